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

/**
 * Half a surrogate pair: JSON can spell one (`"\ud800"`), though it is no character and has no UTF-8 form (no URL
 * or form can carry it, encoding it throws; a UTF-8 decoder would make it U+FFFD). In a `u` pattern a whole pair is
 * one code point, so only a half matches.
 */
export const HAS_HALF_PAIR = /\p{Cs}/u;
/** The same for `replace`, which needs the `g` flag (`test` with it would keep a position between calls). */
const HALF_PAIRS = /\p{Cs}/gu;

/**
 * `text` with each half of a surrogate pair as U+FFFD, as a UTF-8 decoder shows a broken character: what the gateway
 * shows of a text it did not make (an upstream's name, a caller's operation name quoted in an error or a log line).
 * Left as it is, JSON spells the half as an escape of no character, which strict readers (serde_json, jq 1.6) refuse,
 * and with it the whole answer or line.
 */
export function withHalfPairsReplaced(text: string): string {
  return HAS_HALF_PAIR.test(text) ? text.replace(HALF_PAIRS, '\uFFFD') : text;
}

/**
 * The directional embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069), as the body of a character
 * class: shown as they are, they make text display in another order than it is stored. No name holds them, and log
 * lines write them escaped.
 */
export const DIRECTIONAL_CONTROLS = '\\u202a-\\u202e\\u2066-\\u2069';

/**
 * What no person's name holds: control characters (a NUL, a line break, an escape sequence that a terminal showing
 * a log or an export would act on), Unicode's line and paragraph separators, and the directional embeddings,
 * overrides and isolates that make text display in another order than it is stored. Other invisible format
 * characters stay: joiners are part of how names are written in Persian and Indic scripts, and the left-to-right
 * and right-to-left marks of mixed-direction names. So do the other default-ignorable characters that ids, URLs
 * and addresses refuse: variation selectors pick how a name's character (an emoji, a CJK ideograph) is drawn, and
 * a Hangul filler completes a syllable typed in parts. The gateway's inputs and the emulator's connect page refuse
 * the same set.
 */
export const HAS_NAME_CONTROL = new RegExp(`[\\p{Cc}\\p{Zl}\\p{Zp}${DIRECTIONAL_CONTROLS}]`, 'u');
