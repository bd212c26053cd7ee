/**
 * `value` as an http(s) origin (`https://app.example.com`, `http://devbox.lan:4010`), normalized, when it is
 * written as exactly one: a scheme, a host and perhaps a port, with at most a trailing slash. Undefined for
 * anything else (a path, a query, credentials, another scheme, no URL at all).
 */
export function exactOrigin(value: string): string | undefined {
  try {
    const url = new URL(value);
    const ok = (url.protocol === 'http:' || url.protocol === 'https:') && url.origin === value.replace(/\/$/, '');
    return ok ? url.origin : undefined;
  } catch {
    return undefined;
  }
}
