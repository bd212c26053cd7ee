/**
 * JSON's text from its bytes: UTF-8, as RFC 8259 has JSON exchanged, less a byte order mark, which it lets a
 * reader ignore (an editor on Windows, or a server writing a file saved with one, puts it first) and which
 * `JSON.parse` refuses. Bytes that are not UTF-8 become U+FFFD: a reader that must refuse them checks first.
 */
export function jsonText(bytes: Buffer): string {
  const bom = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf;
  return bytes.toString('utf8', bom ? 3 : 0);
}
