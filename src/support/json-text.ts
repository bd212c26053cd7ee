/**
 * JSON's text from its bytes: UTF-8, as RFC 8259 has JSON exchanged, less a byte order mark, which it lets a
 * reader ignore (an editor on Windows, or a server writing a file saved with one, puts it first) and which
 * `JSON.parse` refuses. Bytes that are not UTF-8 become U+FFFD: a reader that must refuse them checks first.
 */
export function jsonText(bytes: Buffer): string {
  const bom = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf;
  return bytes.toString('utf8', bom ? 3 : 0);
}

/**
 * Where `text` stops being JSON (RFC 8259): the offset of its first character that JSON cannot have there
 * (`text.length` when it ends too early), `undefined` when it is JSON. For a text `JSON.parse` refused, to say
 * where: V8 names the position of most mistakes, but quotes the text around others instead (a word misspelt,
 * `True`, `NaN`, a comment, two commas in a list), and where it names one depends on its version. With
 * `repeatedNames`, a name an object already has is one too (`repeatedName`), at its opening quote: JSON.parse
 * keeps the last of them without a word. Walked without recursion: a text nested thousands deep is located too.
 */
export function jsonMistake(text: string, options: { repeatedNames?: boolean } = {}): { at: number; repeatedName?: true } | undefined {
  return walk(text, options).mistake;
}

/**
 * Where in `text`, which is JSON, the value at `path` starts (`['accounts', 3, 'sources', 0, 'port']`), or, when the
 * text has no such value (a field missing from its record), the deepest value on the way to it (the record): to
 * say where a value JSON.parse read is wrong, for a file edited by hand. The text's top value is on the way to any
 * path (its offset when the first step is missing); `undefined` only for a text that is not JSON.
 */
export function jsonValuePlace(text: string, path: ReadonlyArray<string | number>): number | undefined {
  return walk(text, { valueAt: path }).found;
}

/** One walk of `text` for both: it stops at the first mistake, or once the value at `valueAt` is found. */
function walk(
  text: string,
  options: { repeatedNames?: boolean; valueAt?: ReadonlyArray<string | number> },
): { mistake?: { at: number; repeatedName?: true }; found?: number } {
  const target = options.valueAt;
  // With `valueAt`, where the walk is: a name for each object open, an index for each list (one too many while
  // a name is awaited), and the start of the deepest value on the way to the target met so far.
  const path: Array<string | number> = [];
  let found: { depth: number; at: number } | undefined;
  const open: string[] = [];
  // With `repeatedNames`, the names of each object open (none for a list).
  const names: Array<Set<string> | undefined> = [];
  let at = 0;
  // What comes next: a value, a member's name, or what may follow a value (`,`, the container's close, the end).
  let expect: 'value' | 'name' | 'after' = 'value';
  // Right after `[` or `{`, which the close may follow at once.
  let justOpened = false;
  const skipBlanks = () => {
    while (isBlank(text.charCodeAt(at))) at += 1;
  };
  const close = () => {
    open.pop();
    names.pop();
    if (target) path.pop();
  };
  for (;;) {
    skipBlanks();
    if (at >= text.length) return expect === 'after' && open.length === 0 ? { found: found?.at } : { mistake: { at } };
    const char = text[at]!;
    if (justOpened && char === (open.at(-1) === '{' ? '}' : ']')) {
      close();
      at += 1;
      justOpened = false;
      expect = 'after';
      continue;
    }
    justOpened = false;
    if (expect === 'after') {
      const container = open.at(-1);
      if (container === undefined) return { mistake: { at } };
      if (char === ',') {
        expect = container === '{' ? 'name' : 'value';
        if (target && container === '[') path[path.length - 1] = (path.at(-1) as number) + 1;
      } else if (char === (container === '{' ? '}' : ']')) {
        // Past the container the target is in, nothing deeper on the way to it can come.
        if (target && found && path.length === found.depth + 1) return { found: found.at };
        close();
      } else {
        return { mistake: { at } };
      }
      at += 1;
      continue;
    }
    if (expect === 'name') {
      if (char !== '"') return { mistake: { at } };
      const end = stringEnd(text, at);
      if (end.mistake !== undefined) return { mistake: { at: end.mistake } };
      const seen = names.at(-1);
      if (seen || target) {
        // As JSON.parse reads it: "x" and "\u0078" are one name.
        const raw = text.slice(at, end.next);
        const name = raw.includes('\\') ? (JSON.parse(raw) as string) : raw.slice(1, -1);
        if (seen?.has(name)) return { mistake: { at, repeatedName: true } };
        seen?.add(name);
        if (target) path[path.length - 1] = name;
      }
      at = end.next;
      skipBlanks();
      if (text[at] !== ':') return { mistake: { at } };
      at += 1;
      expect = 'value';
      continue;
    }
    if (target && path.length <= target.length && path.every((step, i) => step === target[i])) {
      if (path.length === target.length) return { found: at };
      if (!found || path.length > found.depth) found = { depth: path.length, at };
    }
    if (char === '{' || char === '[') {
      open.push(char);
      if (target) path.push(char === '[' ? 0 : '');
      names.push(char === '{' && options.repeatedNames ? new Set() : undefined);
      at += 1;
      justOpened = true;
      expect = char === '{' ? 'name' : 'value';
      continue;
    }
    const end = char === '"' ? stringEnd(text, at) : char === '-' || isDigit(char) ? numberEnd(text, at) : wordEnd(text, at);
    if (end.mistake !== undefined) return { mistake: { at: end.mistake } };
    at = end.next;
    expect = 'after';
  }
}

type Scanned = { next: number; mistake?: undefined } | { mistake: number };

const isDigit = (char: string | undefined): boolean => char !== undefined && char >= '0' && char <= '9';
/** Space, tab, line feed, carriage return: JSON's blanks (NaN past the text's end is none). */
const isBlank = (code: number): boolean => code === 0x20 || code === 0x09 || code === 0x0a || code === 0x0d;

/** A string from its opening quote at `start`. */
function stringEnd(text: string, start: number): Scanned {
  for (let at = start + 1; at < text.length; at++) {
    const code = text.charCodeAt(at);
    if (code === 0x22) return { next: at + 1 };
    if (code < 0x20) return { mistake: at };
    if (code !== 0x5c) continue;
    at += 1;
    if (at >= text.length) break;
    if (text[at] === 'u') {
      for (let digit = 1; digit <= 4; digit++) {
        if (!/[0-9a-fA-F]/.test(text[at + digit] ?? '')) return { mistake: at + digit };
      }
      at += 4;
    } else if (!'"\\/bfnrt'.includes(text[at]!)) {
      return { mistake: at };
    }
  }
  return { mistake: text.length };
}

/** A number from its first character at `start`: `-`, then digits without a leading 0, a fraction, an exponent. */
function numberEnd(text: string, start: number): Scanned {
  let at = start;
  const digits = (): boolean => {
    if (!isDigit(text[at])) return false;
    while (isDigit(text[at])) at += 1;
    return true;
  };
  if (text[at] === '-') at += 1;
  if (text[at] === '0') at += 1;
  else if (!digits()) return { mistake: at };
  if (text[at] === '.') {
    at += 1;
    if (!digits()) return { mistake: at };
  }
  if (text[at] === 'e' || text[at] === 'E') {
    at += 1;
    if (text[at] === '+' || text[at] === '-') at += 1;
    if (!digits()) return { mistake: at };
  }
  return { next: at };
}

/** `true`, `false` or `null` at `start`; else the first character where the text departs from each. */
function wordEnd(text: string, start: number): Scanned {
  const word = ['true', 'false', 'null'].find((candidate) => candidate[0] === text[start]);
  if (word === undefined) return { mistake: start };
  for (let i = 1; i < word.length; i++) if (text[start + i] !== word[i]) return { mistake: start + i };
  return { next: start + word.length };
}
