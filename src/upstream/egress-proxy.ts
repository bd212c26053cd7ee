import { isIP } from 'node:net';
import { errors, Pool, ProxyAgent, type Dispatcher } from 'undici';
import { urlControlProblem } from '../config/settings.ts';
import { canonicalHost, isLoopbackHost, portOf } from '../support/url.ts';
import { keepingClientCertificateDemand, tlsFailureAfter, TUNNEL_CLOSED_UNANSWERED } from './failures.ts';

/**
 * The egress proxy the upstream calls and the key set's fetches (AUTH_JWKS_URL) go through, from the
 * conventional variables (`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`, or their lower-case forms): for a deployment
 * whose only way out is a proxy. Neither undici's pool nor Node's fetch reads them, so without this such a
 * deployment cannot reach the API, nor an identity provider's keys, at all.
 */
export interface EgressProxy {
  /** The proxy's origin (`http://proxy.example:3128`), without the credentials its URL may carry. */
  origin: string;
  /**
   * Those credentials as the tunnels' `Proxy-Authorization` (Basic), or `undefined` when it carries none: a
   * secret, for the client alone, never logged nor said.
   */
  authorization: string | undefined;
  /** The variable it was read from (`HTTPS_PROXY`, `http_proxy` …), for the messages that name it. */
  variable: string;
  /** `host:port`: all that logs and errors show of it (its credentials never). */
  shown: string;
}

/**
 * The variables naming the proxy for an upstream of each scheme, the upper-case form first, as Go reads them (curl
 * reads the lower-case one first, and `http_proxy` alone; undici's EnvHttpProxyAgent the lower-case one first).
 */
const PROXY_VARIABLES = { 'https:': ['HTTPS_PROXY', 'https_proxy'], 'http:': ['HTTP_PROXY', 'http_proxy'] } as const;
const NO_PROXY_VARIABLES = ['NO_PROXY', 'no_proxy'] as const;

/**
 * The proxy `baseUrl` (the upstream, an http(s) URL) is reached through, or `undefined` when none is set for
 * its scheme, when `NO_PROXY` lists its host, or when it is on loopback: the embedded emulator, or one a
 * developer runs, must still be reached from a shell where a corporate proxy is set. A value that is no proxy
 * URL pushes one line onto `problems` naming its variable, never the value (it may carry credentials).
 */
export function egressProxyFor(baseUrl: string, read: (name: string) => string | undefined, problems: string[]): EgressProxy | undefined {
  const variable = proxyVariablesFor(baseUrl, read)?.find((name) => read(name) !== undefined);
  if (variable === undefined) return undefined;
  const value = read(variable)!;
  const control = urlControlProblem(variable, value);
  if (control !== undefined) {
    problems.push(control);
    return undefined;
  }
  const proxy = parseProxyUrl(value);
  if (proxy === undefined) {
    problems.push(`${variable} must be the egress proxy's http:// or https:// URL with a host, e.g. http://proxy.example:3128 (its value is not shown: it may carry credentials)`);
    return undefined;
  }
  return { ...proxy, variable };
}

/**
 * The warning for `ALL_PROXY` (or `all_proxy`: curl's fallback for every scheme, often a SOCKS proxy) set where
 * it would have applied, though it is not read: no proxy variable for `baseUrl`'s scheme, which is not on
 * loopback nor in `NO_PROXY`. A deployment whose only way out it is otherwise learnt only that the upstream could
 * not be reached. Its value is never said: it may carry credentials.
 */
export function ignoredAllProxy(baseUrl: string, read: (name: string) => string | undefined): string | undefined {
  const all = ['ALL_PROXY', 'all_proxy'].find((name) => read(name) !== undefined);
  const variables = proxyVariablesFor(baseUrl, read);
  if (all === undefined || variables === undefined || variables.some((name) => read(name) !== undefined)) return undefined;
  return `${all} is set but not read: CONTEXTIO_API_URL is reached directly, not through it; set ${variables[0]} to reach it through an http:// or https:// proxy (a SOCKS proxy is not supported)`;
}

/**
 * The variables that would name the proxy for `baseUrl`, by its scheme; `undefined` when it is reached directly
 * whatever they hold: on loopback, or its host listed in `NO_PROXY`.
 */
function proxyVariablesFor(baseUrl: string, read: (name: string) => string | undefined): readonly string[] | undefined {
  const target = new URL(baseUrl);
  if (isLoopbackHost(target.hostname) || bypassesProxy(target, read(NO_PROXY_VARIABLES[0]) ?? read(NO_PROXY_VARIABLES[1]))) return undefined;
  return target.protocol === 'https:' ? PROXY_VARIABLES['https:'] : PROXY_VARIABLES['http:'];
}

/**
 * An http(s) proxy URL's origin, credentials and `host:port` (its scheme's default port when none is written);
 * `undefined` for anything else. Written without a scheme (`proxy.example:3128`, as many shells set it), it is
 * read as http://, as curl and Go do: parsed as it is, `proxy.example:` would be its scheme.
 */
function parseProxyUrl(value: string): Omit<EgressProxy, 'variable'> | undefined {
  try {
    const url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`);
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '') return undefined;
    // Decoded here, where a malformed escape (`%zz`) is a problem of the setting, not a crash at the first call.
    const credentials = url.username === '' && url.password === '' ? undefined : `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
    return {
      origin: url.origin,
      authorization: credentials === undefined ? undefined : `Basic ${Buffer.from(credentials).toString('base64')}`,
      shown: `${url.hostname}:${portOf(url)}`,
    };
  } catch {
    return undefined;
  }
}

/**
 * Whether `NO_PROXY` (separated by commas or spaces, as curl reads it) sends `target` around the proxy: `*` for every
 * host; a host name for itself, an address for itself alone (however written, an IPv4 one mapped into IPv6 too); `domain` or `.domain` (or
 * `*.domain`) for that domain and every name under it; each with an optional `:port` that must then be the
 * target's (its scheme's default when it names none). Names compare without case and without a trailing dot.
 * Address ranges (CIDR) are not read.
 */
export function bypassesProxy(target: URL, noProxy: string | undefined): boolean {
  if (noProxy === undefined) return false;
  const host = bareHost(target.hostname);
  const port = String(portOf(target));
  // Spaces separate entries too, as curl and undici's EnvHttpProxyAgent read them (no name holds one): a list
  // written `intranet.lan context.io` was one entry that matched nothing.
  return noProxy
    .split(/[,\s]+/)
    .some((entry) => entry === '*' || entryMatches(entry, host, port));
}

/** One `NO_PROXY` entry against a host (bare, lower case, an address as the URL parser writes it) and its port. */
function entryMatches(entry: string, host: string, port: string): boolean {
  const { name, port: entryPort } = splitEntry(entry);
  // Compared as numbers: `:04443` is port 4443, as the URL parser reads the upstream's own and undici's
  // EnvHttpProxyAgent reads an entry's; compared as text, such an entry matched no port at all.
  if (name === '' || (entryPort !== undefined && Number(entryPort) !== Number(port))) return false;
  // An address is matched by the same address alone, however it is written (`fd00:0:0:0:0:0:0:1` is the URL's
  // `fd00::1`): it has no names under it as a domain does, so `0.0.1` is no suffix of `10.0.0.1`.
  if (isIP(host) !== 0) return sameAddress(addressAsWritten(name), host);
  const domain = name.replace(/^\*?\./, '');
  return host === domain || host.endsWith(`.${domain}`);
}

/**
 * An address as the URL parser writes a host (`::ffff:10.0.0.1` as `::ffff:a00:1`), or `undefined` for what is
 * none. One the URL parser refuses (an IPv6 address with a zone, `fe80::1%eth0`) stays as written: never a URL's host.
 */
function addressAsWritten(name: string): string | undefined {
  return isIP(name) === 0 ? undefined : bareHost(canonicalHost(name));
}

/**
 * Whether two addresses, as the URL parser writes them, are one: an IPv4 address mapped into IPv6
 * (`::ffff:10.0.0.1`, written `::ffff:a00:1`) is that IPv4 address, which a connection to it reaches (as
 * `isLoopbackHost` takes `::ffff:127.0.0.1` for loopback): an upstream so written was proxied though NO_PROXY
 * listed its address as `10.0.0.1`.
 */
function sameAddress(entry: string | undefined, host: string): boolean {
  return entry !== undefined && unmapped(entry) === unmapped(host);
}

/** An IPv4-mapped IPv6 address as its IPv4 address (`::ffff:a00:1` → `10.0.0.1`); any other as it is. */
function unmapped(address: string): string {
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(address);
  if (!mapped) return address;
  const [high, low] = [parseInt(mapped[1]!, 16), parseInt(mapped[2]!, 16)];
  return [high >> 8, high & 255, low >> 8, low & 255].join('.');
}

/** An entry's host (bare, lower case) and port: `[::1]:8080`, `::1`, `.example.com:443`, `example.com`. */
function splitEntry(entry: string): { name: string; port: string | undefined } {
  const bracketed = /^\[([^\]]*)\](?::(\d+))?$/.exec(entry);
  if (bracketed) return { name: bareHost(bracketed[1]!), port: bracketed[2] };
  // More than one colon without brackets: an IPv6 address, which has no port then.
  const withPort = /^([^:]*):(\d+)$/.exec(entry);
  if (withPort) return { name: bareHost(withPort[1]!), port: withPort[2] };
  return { name: bareHost(entry), port: undefined };
}

/** A host name or address as compared: lower case, no brackets, no trailing dot. */
function bareHost(host: string): string {
  return host.toLowerCase().replace(/^\[|\]$/g, '').replace(/\.$/, '');
}

/**
 * What a tunnel the proxy refused with `status` asks of the operator, for a tunnel to the host of `setting`'s URL
 * (CONTEXTIO_API_URL, AUTH_JWKS_URL); undefined when its status says nothing of it (its own log says why).
 * Credentials are wanted by a 407, and by a 401 too: tinyproxy (1.11) answers a CONNECT with wrong `BasicAuth`
 * credentials so. Asked of a proxy URL that carries none, checking them sent the operator nowhere. Short: the
 * start-up check's reason for the key set, in which it ends, is cut at 200 characters.
 */
export function proxyRefusalHint(status: number, proxy: EgressProxy, setting: string): string | undefined {
  if (status === 407 || status === 401) {
    return proxy.authorization === undefined
      ? `it wants credentials, which ${proxy.variable} lacks: ${new URL(proxy.origin).protocol}//user:password@host:port`
      : `it wants credentials: check the user name and password in ${proxy.variable}`;
  }
  if (status === 403) return `does it allow CONNECT to ${setting}’s host and port?`;
  return undefined;
}

/**
 * The pool behind an egress proxy: undici's `ProxyAgent`, whose pool for the upstream (or the key set's host)
 * has `poolOptions`, each of its connections a CONNECT tunnel, for an http:// upstream too (forwarded as plain
 * requests, the signed calls would be the proxy's to cache or rewrite). The proxy's credentials go as the tunnels'
 * `Proxy-Authorization` token, apart from its URL: undici would send none for a user name without a password,
 * and the URL it keeps (and may put in its errors) carries none.
 *
 * `opening`, when given, counts the tunnels being opened (see `TunnelsOpening`).
 *
 * A CONNECT the proxy leaves unanswered is given up after `tunnelTimeoutMs` (the upstream's deadline: no call
 * waits longer for it). undici waits for it as for any answer, 300 s, holding one of the pool's connections
 * meanwhile, and the call given up on does not end it: a proxy that stalled for a moment would leave the gateway
 * without a connection to the upstream for minutes after it recovered (a direct connection's opening gives up
 * after 10 s).
 *
 * A TLS failure on the way to an https:// proxy is said to be the proxy's (`tunnelFailure`).
 *
 * A CONNECT the proxy closes without answering (at its connection limit, say) fails with undici's code for a
 * connection that closed (`UND_ERR_SOCKET`), which its client takes as a reason to connect again at once with the
 * requests kept: the gateway connected to such a proxy in a loop, hundreds of times a second, each call waiting out
 * its whole deadline. Rethrown as TUNNEL_CLOSED_UNANSWERED, the requests waiting for the tunnel fail, and their
 * calls are retried as after a connection that failed (failures.ts).
 *
 * The pool for the upstream keeps an https:// upstream's demand for a client certificate as its connections' error,
 * as the gateway's own pool does (`keepingClientCertificateDemand`), and so does the pool for an https:// proxy:
 * its demand, after the CONNECT was written, was taken for a CONNECT the proxy closed unanswered (below).
 *
 * An https:// proxy given by IP address is reached without a TLS server name (its certificate is still checked
 * for that address): undici would send the address as one, which RFC 6066 forbids and for which Node prints a
 * DeprecationWarning on the gateway's stderr, among its log lines.
 */
export function throughProxy({ origin, authorization }: EgressProxy, poolOptions: Pool.Options, tunnelTimeoutMs: number, opening?: TunnelsOpening): ProxyAgent {
  return new ProxyAgent({
    uri: origin,
    proxyTunnel: true,
    ...(authorization === undefined ? {} : { token: authorization }),
    clientFactory: (proxyOrigin, options: Pool.Options) => {
      const { connect } = options;
      const noAddressAsServerName: typeof connect =
        typeof connect === 'function'
          ? keepingClientCertificateDemand((opts, callback) => connect({ ...opts, servername: isAddress(opts.servername) ? undefined : opts.servername }, callback))
          : connect;
      const pool = new Pool(proxyOrigin, { ...options, connect: noAddressAsServerName, headersTimeout: tunnelTimeoutMs });
      // ProxyAgent asks for its tunnels with the promise form.
      const openTunnel = pool.connect.bind(pool) as (options: Dispatcher.ConnectOptions) => Promise<Dispatcher.ConnectData>;
      pool.connect = ((connectOptions: Dispatcher.ConnectOptions) => {
        if (opening) opening.count++;
        return openTunnel(connectOptions)
          .finally(() => opening && opening.count--)
          .catch((error: unknown) => Promise.reject(tunnelFailure(error)));
      }) as typeof pool.connect;
      return pool;
    },
    // The pool for the upstream, whose `connect` opens a tunnel, then TLS through it for an https:// upstream.
    factory: (upstreamOrigin, options: Pool.Options) => {
      const { connect } = options;
      return new Pool(upstreamOrigin, { ...options, connect: typeof connect === 'function' ? keepingClientCertificateDemand(connect) : connect });
    },
    ...poolOptions,
  });
}

/**
 * The tunnels a `throughProxy` agent is opening (its connection to the proxy, TLS to an https:// one, and the CONNECT,
 * none answered yet): a deadline that passes while one is was the proxy's to meet, not the destination's.
 */
export interface TunnelsOpening {
  count: number;
}

/**
 * Whether a server name undici would send is an IP address: an IPv6 one comes as the proxy URL's host, in
 * brackets (`[2001:db8::1]`), which Node would also take for a DNS name to check the certificate against, so
 * that a certificate issued for the address could never match.
 */
function isAddress(servername: string | null | undefined): boolean {
  return typeof servername === 'string' && isIP(servername.replace(/^\[(.*)\]$/, '$1')) !== 0;
}

/**
 * A CONNECT's failure as the client should read it: one whose connection the proxy closed unanswered under a code
 * of its own; a TLS failure, which here can only be the https:// proxy's (an https:// upstream's handshake comes
 * after, through the tunnel), as undici's own error for a proxy's TLS (`SecureProxyConnectionError`), which it
 * raises only for a certificate of another host name: a self-signed proxy certificate behind an https:// upstream
 * was said to be "the egress proxy's or the upstream's", and the key set's fetch named neither.
 */
function tunnelFailure(error: unknown): unknown {
  const code = (error as { code?: unknown } | null)?.code;
  const failure =
    code === 'UND_ERR_SOCKET'
      ? Object.assign(new Error('the egress proxy closed the connection without answering the CONNECT', { cause: error }), { code: TUNNEL_CLOSED_UNANSWERED })
      : typeof code === 'string' && tlsFailureAfter(code, false) !== undefined
        ? new errors.SecureProxyConnectionError(error as Error)
        : error;
  if (typeof failure === 'object' && failure !== null) tunnelFailures.add(failure);
  return failure;
}

/** The failures tunnels failed to open with (`tunnelFailure`'s). */
const tunnelFailures = new WeakSet<object>();

/**
 * Whether `error` is one a tunnel failed to open with before the proxy answered its CONNECT: the proxy's, whatever
 * its code (its connection refused, reset, closed, its TLS), as no connection to the destination was made yet.
 */
export function failedOpeningTunnel(error: unknown): boolean {
  return typeof error === 'object' && error !== null && tunnelFailures.has(error);
}
