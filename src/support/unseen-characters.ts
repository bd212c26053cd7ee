/**
 * What no id, connect token, URL or email address holds as written: spaces of any kind (`\s`), C0 and C1
 * controls (`\p{Cc}`), format characters (`\p{Cf}`: a zero-width space, a byte order mark, a soft hyphen …)
 * and the other default-ignorable ones, rendered as nothing too (Hangul fillers, the combining grapheme joiner,
 * variation selectors, tags). The body of a character class, for regular expressions with the `u` flag: the
 * caller's inputs (src/resolvers/inputs.ts) and what the upstream client puts into a path
 * (src/upstream/request.ts) refuse the same set.
 */
const UNSEEN_CHARACTERS = String.raw`\s\p{Cc}\p{Cf}\p{Default_Ignorable_Code_Point}`;

/** Matches text holding one of UNSEEN_CHARACTERS. */
export const HAS_UNSEEN = new RegExp(`[${UNSEEN_CHARACTERS}]`, 'u');
