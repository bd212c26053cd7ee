import { DIRECTIONAL_CONTROLS } from './unseen-characters.ts';
/**
 * A value quoted back in an error or a log line, cut to `max` UTF-16 code units plus an ellipsis when longer:
 * enough to recognise, bounded whatever was sent. The cut never falls inside a surrogate pair, whose lone
 * half JSON would carry as an escape and a terminal would show as a replacement character.
 */
export function shortened(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, cutEnd(text, max))}…`;
}

/**
 * Where to cut `text` to keep at most `max` UTF-16 code units of it: at `max`, or one before when that would
 * split a surrogate pair (its high half would end what is kept).
 */
export function cutEnd(text: string, max: number): number {
  const last = text.charCodeAt(max - 1);
  return last >= 0xd800 && last <= 0xdbff ? max - 1 : max;
}

/**
 * A refused setting's value as its error quotes it: in quotes, cut to 100 characters (a setting may hold anything
 * pasted in), its line breaks and other control characters escaped as JSON escapes them (`\n`), U+2028 and
 * U+2029 too: each problem is one line, and the rest of a value read from a `.env` or a secret store must not
 * stand on a line of its own, where it could pass for another problem.
 */
export function quotedSetting(value: string): string {
  return withControlsEscaped(JSON.stringify(shortened(value, 100)));
}

/**
 * A refused setting's value as `quotedSetting` quotes it, but for one holding an `@`, which is said not to be shown:
 * no setting whose value is quoted has an `@` of its own, and a URL pasted into one (`HOST=https://user:password@…`)
 * may carry a password.
 */
export function shownSetting(value: string): string {
  return value.includes('@') ? 'a value with an @, not shown' : quotedSetting(value);
}

/**
 * JSON text with U+2028 and U+2029 escaped (`\u2028`), and DEL and the C1 controls (U+007F–U+009F, `\u0085`), as
 * JSON allows and JSON.stringify does not do: some line readers (Python's str.splitlines, some editors and log
 * viewers) break a line at U+0085 (next line), U+2028 and U+2029, and terminals honouring C1 controls act on U+009B as on
 * ESC (which JSON escapes itself), the opener of an escape sequence that recolours, hides or rewrites what is
 * shown. They reach a line from a header Node reads as Latin-1 (a byte 0x85 or 0x9b in `Host`). The directional
 * embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069) too: shown as they are, they make a terminal or a
 * log viewer display the rest of the line in another order than it is written (a caller's `operationName` holding
 * U+202E displays the fields after it reversed).
 */
export function withControlsEscaped(json: string): string {
  return json.replace(CONTROLS_JSON_KEEPS, (separator) => `\\u${separator.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** The line breaks of some readers that JSON.stringify leaves as they are (it escapes those below U+0020). */
const JSON_KEPT_LINE_BREAKS = '\\u0085\\u2028\\u2029';
/** Those and the other control characters JSON.stringify leaves as they are: DEL, the C1 controls, the directional ones. */
const CONTROLS_JSON_KEEPS = new RegExp(`[\\u007f-\\u009f${JSON_KEPT_LINE_BREAKS}${DIRECTIONAL_CONTROLS}]`, 'g');
/** What `onOneLine` escapes: the control characters JSON escapes, and those and the line breaks it keeps. */
const LINE_BREAKS_AND_CONTROLS = new RegExp(`[\\u0000-\\u001f\\u007f-\\u009f${JSON_KEPT_LINE_BREAKS}${DIRECTIONAL_CONTROLS}]`, 'g');

/**
 * A setting's value written after its name (`HOST=gateway.invalid: …`), as `quotedSetting` writes it but without
 * the quotes: one line, at most 100 characters of it.
 */
export function settingValue(value: string): string {
  return quotedSetting(value).slice(1, -1);
}

/**
 * `text` on one line: its line breaks and other control characters escaped as JSON escapes them (`\n`), DEL, the C1
 * controls, U+2028 and U+2029 too, the rest as it is. For a line quoting what it did not choose (a failed start's reason naming a path
 * from a `.env`): the rest of it must not stand on a line of its own, where it could pass for another line.
 */
export function onOneLine(text: string): string {
  return text.replace(LINE_BREAKS_AND_CONTROLS, (character) => withControlsEscaped(JSON.stringify(character).slice(1, -1)));
}
