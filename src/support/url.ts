import { isIP } from 'node:net';

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

/**
 * The host to write in a URL for a server listening on `host`: a wildcard address (every interface) is reached
 * on loopback, which is what a URL should name (`http://0.0.0.0:4000` is no address to give anyone); an IPv6
 * address goes in brackets.
 */
export function urlHostOf(host: string): string {
  const reachable = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return reachable.includes(':') ? `[${reachable}]` : reachable;
}

/**
 * How a browser spells `value` in its `Origin` header, when `value` is an http(s) origin written another way
 * (capitals, its scheme's default port, `https://App.Example.com:443`): what a refusal of it can suggest.
 * Undefined for anything else (a path, a query, credentials, another scheme), and for an exact origin.
 */
export function originAsBrowsersSendIt(value: string): string | undefined {
  try {
    const url = new URL(value);
    const bare = (url.protocol === 'http:' || url.protocol === 'https:') && !url.username && !url.password && !/[?#]/.test(value);
    const pathless = url.pathname === '/' && !/^[a-z]+:\/\/[^/]*\/./i.test(value);
    return bare && pathless && url.origin !== value.replace(/\/$/, '') ? url.origin : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether a URL's scheme (`new URL(…).protocol`) is one a browser runs or reads locally rather than hands to a
 * site or an app: a connect flow's callback with one would run script or open local content in the user's
 * browser once the mailbox is connected. An app's own scheme (`cio-api-auth:`) is not.
 */
export function isBrowserLocalScheme(protocol: string): boolean {
  return BROWSER_LOCAL_SCHEMES.has(protocol);
}

/** A URL's port, its scheme's default (443 for https:, else 80) when it names none: `new URL` leaves a default port out. */
export function portOf(url: URL): number {
  return Number(url.port || (url.protocol === 'https:' ? 443 : 80));
}

/** Whether `value` is an absolute http:// or https:// URL. */
export function isHttpUrl(value: string): boolean {
  try {
    const { protocol } = new URL(value);
    return protocol === 'http:' || protocol === 'https:';
  } catch {
    return false;
  }
}

/**
 * Where a connect flow may send the browser once the mailbox is connected (a connect token's `callback_url`): an
 * absolute URL, a web page's or an app's own scheme (`cio-api-auth://`), not one the browser runs or reads locally.
 */
export function isCallbackUrl(value: string): boolean {
  try {
    return !isBrowserLocalScheme(new URL(value).protocol);
  } catch {
    return false;
  }
}

const BROWSER_LOCAL_SCHEMES: ReadonlySet<string> = new Set([
  'javascript:', 'vbscript:', 'data:', 'blob:', 'file:', 'filesystem:', 'about:', 'view-source:',
  // Archives and browser-internal pages some browsers open in place.
  'jar:', 'mhtml:', 'ms-its:', 'its:', 'mk:', 'chrome:', 'resource:',
]);

/**
 * Whether a host name or address reaches this machine only: `localhost`, 127.0.0.0/8, `::1`, and 127.0.0.0/8
 * mapped into IPv6 (`::ffff:127.0.0.1`, which a URL spells `::ffff:7f00:1`), an IPv6 address however written.
 */
export function isLoopbackHost(host: string): boolean {
  const h = canonicalHost(host).replace(/^\[(.*)\]$/, '$1');
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h) || /^::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}$/.test(h);
}

/**
 * A host name or address as a URL spells it, so that one address has one spelling: lower case, and an IPv6
 * address compressed (`[FD00:0:0::1]` → `[fd00::1]`), in brackets when given in them. Only an IPv6 address is
 * parsed, so that nothing else in a header (an `@`, a `/`) is read as a URL's parts; one the URL parser refuses
 * (with a zone, `fe80::1%eth0`) stays as written.
 */
export function canonicalHost(host: string): string {
  const lower = host.toLowerCase();
  const bracketed = lower.startsWith('[') && lower.endsWith(']');
  const address = bracketed ? lower.slice(1, -1) : lower;
  if (isIP(address) !== 6) return lower;
  try {
    const spelt = new URL(`http://[${address}]/`).hostname;
    return bracketed ? spelt : spelt.slice(1, -1);
  } catch {
    return lower;
  }
}

/** The name or address of a `Host` header, without its port: `[::1]:4000` → `[::1]`, `localhost:80` → `localhost`. */
export function hostnameOf(host: string): string {
  const bracketed = /^(\[[^\]]*\])(:\d*)?$/.exec(host);
  if (bracketed) return bracketed[1]!;
  return host.replace(/:\d*$/, '');
}

/** Whether a URL carries a user name or password (`https://user:secret@host/…`); false for no URL at all. */
export function hasCredentials(value: string): boolean {
  try {
    const url = new URL(value);
    return url.username !== '' || url.password !== '';
  } catch {
    return false;
  }
}

/**
 * A URL as a log line shows it: its query's values left out (`?code=…`), for a query may carry a key (a
 * function host's, say); its names stay, to tell one setting from another. Read as text, not parsed, so that
 * whatever was configured shows as it was written. A fragment is left out too (`#…`): it may carry a token
 * (`#access_token=…`, where an identity provider's redirect points).
 */
export function urlForLog(value: string): string {
  const hashAt = value.indexOf('#');
  const beforeFragment = hashAt === -1 ? value : value.slice(0, hashAt);
  const fragment = hashAt === -1 ? '' : hashAt === value.length - 1 ? '#' : '#…';
  const queryAt = beforeFragment.indexOf('?');
  if (queryAt === -1) return beforeFragment + fragment;
  const names = beforeFragment.slice(queryAt + 1).split('&').map((pair) => {
    const equals = pair.indexOf('=');
    return equals === -1 ? pair : `${pair.slice(0, equals)}=…`;
  });
  return `${beforeFragment.slice(0, queryAt)}?${names.join('&')}${fragment}`;
}
