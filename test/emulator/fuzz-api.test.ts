import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { describe, it, type TestContext } from 'node:test';
import { authorizationHeader, parseFormPairs, protocolParams, sign, type OAuthParam } from '../../src/oauth/signature.ts';
import { startEmulator, type Emulator } from '../../src/emulator/index.ts';
import { Random } from '../helpers/random.ts';
import { manualClock } from './helpers.ts';

/**
 * A seeded, deterministic fuzz of the emulator's own surface (the `/2.0` API and the connect page), over raw
 * sockets so that any bytes can be sent: mostly correctly signed requests with odd methods, paths, queries, bodies
 * and headers (so they reach the routes), a share badly signed, and between them sequences of valid operations
 * (accounts, tokens, the connect flow). Each answer is checked against what /work/shared/contextio-2.0.md says
 * of the API (`brokenInvariant`), the store against a model of what the answers said happened (`Model`), and the
 * connect page's HTML for any reflected markup (`brokenPage`).
 *
 * The same seed sends the same requests (ids the emulator draws at random are referred to by their position in
 * the model, not their value). A failure names its seed, case and request: `EMULATOR_FUZZ_SEED=<seed>` replays the
 * run, `EMULATOR_FUZZ_CASES=<n>` runs more cases (a run stops at its first failure).
 */
const SEED = Number(process.env['EMULATOR_FUZZ_SEED'] ?? 0xc0de_2010) >>> 0;
const CASES = Number(process.env['EMULATOR_FUZZ_CASES'] ?? 400);

const CONSUMER_KEY = 'fuzz-key';
/** No answer may hold it (contextio-2.0.md signs with it; the preamble: secrets never appear in responses). */
const CONSUMER_SECRET = 'fuzz-secret-Zq81-never-shown';
/** The emulator's clock, fixed: OAuth timestamps are judged against it, and no token expires during the run. */
const START_MS = Date.UTC(2026, 0, 15, 12);

const STACK_TRACE = /\n\s+at \S|\bat [\w$.<>]+ \((?:file|node):|\.(?:ts|js|mjs):\d+:\d+/;

/** What goes on the wire, and what the test knows about it. */
interface Fuzzed {
  kind: string;
  method: string;
  /** Raw request target: `/2.0/...?query` or `/connect/...`. */
  target: string;
  headers: Array<[string, string]>;
  body: Buffer;
  /** Bytes written after the head; `undefined` writes `body` as it is. */
  wire?: Buffer;
  /** The signature is meant to fail (its way, for the report). */
  badSignature?: string;
  /** The request is meant to arrive incomplete or broken at the HTTP layer: no particular answer is owed. */
  broken?: boolean;
  /** The nonce it was signed with, and the timestamp beside it: the two a replay sends again. */
  nonce?: Nonce;
}

interface Nonce {
  nonce: string;
  timestamp: number;
}

interface Answer {
  status: number;
  headers: Map<string, string>;
  text: string;
}

/** Sends raw bytes with `Connection: close` and reads the first answer until the server closes. */
function send(port: number, head: string, body: Buffer, halfClose: boolean): Promise<Answer | undefined> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('no answer within 5 s'));
    }, 5_000);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(parseAnswer(Buffer.concat(chunks)));
    });
    socket.write(Buffer.concat([Buffer.from(head, 'utf8'), body]));
    // A body declared longer than sent would be waited for until the server's own timeout: the client leaves.
    if (halfClose) setTimeout(() => socket.end(), 20);
  });
}

function parseAnswer(bytes: Buffer): Answer | undefined {
  // An interim `100 Continue` (Node sends it to an `Expect: 100-continue`) comes before the answer.
  while (/^HTTP\/1\.1 1\d\d /.test(bytes.subarray(0, 13).toString('latin1'))) bytes = bytes.subarray(bytes.indexOf('\r\n\r\n') + 4);
  const end = bytes.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const [statusLine = '', ...lines] = bytes.subarray(0, end).toString('latin1').split('\r\n');
  const headers = new Map<string, string>();
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  const length = Number(headers.get('content-length') ?? Number.NaN);
  const rest = bytes.subarray(end + 4);
  const body = Number.isFinite(length) ? rest.subarray(0, length) : rest;
  return { status: Number(statusLine.split(' ')[1]), headers, text: body.toString('utf8') };
}

// ---- signing -------------------------------------------------------------------------------------------------

/** Pairs decoded as the verifier decodes them; `undefined` for malformed percent-encoding. */
function pairsOf(encoded: string): OAuthParam[] | undefined {
  try {
    return parseFormPairs(encoded);
  } catch {
    return undefined;
  }
}

/** RFC 5849's test for a signed body (contextio-2.0.md: only a form body is signed), written independently of http.ts. */
function isForm(contentType: string | undefined): boolean {
  return contentType !== undefined && /^application\/x-www-form-urlencoded\s*(;|$)/i.test(contentType.trim());
}

interface Signing {
  method: string;
  baseUrl: string;
  query: string;
  form: string;
  nonce: string;
  timestamp: number;
  key?: string;
  secret?: string;
  signatureMethod?: string;
  version?: string | null;
}

function authorization(s: Signing): string {
  const protocol = protocolParams(s.key ?? CONSUMER_KEY, s.nonce, String(s.timestamp)).flatMap(([name, value]): OAuthParam[] => {
    if (name === 'oauth_signature_method') return [[name, s.signatureMethod ?? value]];
    if (name === 'oauth_version') return s.version === null ? [] : [[name, s.version ?? value]];
    return [[name, value]];
  });
  const params = [...(pairsOf(s.query) ?? []), ...(pairsOf(s.form) ?? []), ...protocol];
  return authorizationHeader(protocol, sign({ method: s.method, baseUrl: s.baseUrl, params, consumerSecret: s.secret ?? CONSUMER_SECRET }));
}

// ---- what is sent ---------------------------------------------------------------------------------------------

/** The model of the store, learned only from the answers: which accounts and tokens exist, in creation order. */
interface Model {
  accounts: string[];
  tokens: Map<string, { owner: string | null; used: boolean }>;
  /** The connect form's mark (`submission`) that used each token: sent again, it leads to the callback again. */
  submissions: Map<string, string>;
}

const INJECTIONS = [
  '"><script>alert(1)</script>',
  "'><img src=x onerror=alert(1)>",
  '" autofocus onfocus="alert(1)',
  '</title><script>alert(2)</script>',
  '<svg/onload=alert(3)>',
  '\'" onmouseover=alert(4) x="',
];

const ODD_IDS = [
  '', '.', '..', '%2e%2e', '%2F', 'a%2Fb', '%2F..%2F', '0', '-1', 'null', 'undefined', '__proto__', 'constructor',
  'me::mail.example.com', 'me%3A%3Amail.example.com', 'me%3a%3amail.example.com', '%3A%3A', '::',
  'z'.repeat(3_000), '%C3%A9t%C3%A9', '%F0%9F%93%AC', '%FF', '%', '%zz', '%00', '%0D%0Aset-cookie:x', '%22%3E%3Cscript%3E',
  '52DAABEFCEA6F9C35A4A0997', '52daabefcea6f9c35a4a0997%20', '+', '%20', 'adaconnected0001%00',
];
/** Ids sent as raw UTF-8 bytes, which no request-target may hold (RFC 9112 §3.2: ASCII): no particular answer is owed but no 5xx. */
const RAW_UNICODE_IDS = ['zoë', '\u{1F4EC}', 'me::mäil.example.com'];

const EMAILS = ['fuzz@example.com', 'zoë@exämple.com', 'a@b', 'no-at-sign', ' ', '', '@example.com', 'x@y z', `${'l'.repeat(300)}@example.com`, `${INJECTIONS[0]}@x.example`];
const CALLBACKS = [
  'https://app.example.com/done', 'myapp://connected', 'http://127.0.0.1:1/cb?x=1#frag', 'https://app.example.com/cb?contextio_token=old',
  'javascript:alert(1)', 'data:text/html,hi', 'not a url', '', `https://app.example.com/?q=${INJECTIONS[0]}`, 'https://app.example.com/\u00e9\t\n',
];
const ODD_VALUES = ['', '0', '1', '2', '-1', '1e3', 'true', 'abc', '99999999999999999999', ' 1', '\u0000', '\u00e9', '\ud83d\udcec', ...INJECTIONS.slice(0, 2)];

/** A form or query's pairs, encoded; sometimes with odd encodings spliced in (malformed ones included). */
function encodePairs(random: Random, pairs: OAuthParam[]): string {
  const parts = pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`);
  if (random.chance(0.1)) parts.splice(random.int(parts.length + 1), 0, random.pick(['', '=', '=x', 'flag', 'a=b=c', 'x=%zz', 'x=%FF', 'x=%C3', 'x=a+b', '%3D=%26']));
  return parts.join('&');
}

/**
 * One of the store's addresses as a client may write it, which the API matches as the address (GET /accounts's
 * `email`: in any case, blanks around it trimmed), or another address: an email filter met only addresses no
 * account had, so one that told cases apart found nothing either way.
 */
function addressLike(random: Random, addresses: readonly string[]): string {
  if (addresses.length === 0 || random.chance(0.1)) return random.pick(['nobody@example.com', 'ADA@example.com.', 'ada@example']);
  const address = random.pick(addresses);
  const mixed = () => [...address].map((c) => (random.chance(0.5) ? c.toUpperCase() : c.toLowerCase())).join('');
  switch (random.int(6)) {
    case 0: return address;
    case 1: return address.toUpperCase();
    case 2: case 3: return mixed();
    case 4: return `${random.pick([' ', '  ', '\t'])}${mixed()}${random.pick(['', ' '])}`;
    default: return address.slice(0, -1);
  }
}

/** A `limit` or `offset`: mostly a count around the store's few accounts (one that pages them), else an odd value. */
function countLike(random: Random): string {
  return random.chance(0.6) ? String(random.pick([0, 1, 1, 2, 2, 3, 4, 5, 99, 100, 101])) : random.pick(ODD_VALUES);
}

/** Parameters for one route's method: mostly the known ones, fitting or odd, plus unknown and repeated names. */
function paramsFor(random: Random, names: readonly string[], addresses: readonly string[]): OAuthParam[] {
  const pairs: OAuthParam[] = [];
  for (const name of names) {
    if (!random.chance(0.7)) continue;
    const value =
      name === 'email' ? (random.chance(0.5) ? addressLike(random, addresses) : random.pick(EMAILS))
      : name === 'limit' || name === 'offset' ? countLike(random)
      : name === 'status_ok' ? random.pick(['0', '1', '', 'true', 'false', ...ODD_VALUES])
      : name.endsWith('callback_url') ? random.pick(CALLBACKS)
      : name === 'first_name' || name === 'last_name' ? random.pick(['Ada', '', 'Zoë', ...INJECTIONS])
      : name === 'server' ? random.pick(['imap.example.com', 'bad server', '', 'x'.repeat(300)])
      : name === 'type' ? random.pick(['imap', 'IMAP', 'pop3'])
      : name === 'status' ? random.pick(['OK', 'INVALID_CREDENTIALS', 'CONNECTION_IMPOSSIBLE', 'DISABLED', 'ok', 'nope', ''])
      : random.pick(ODD_VALUES);
    pairs.push([name, value]);
  }
  if (random.chance(0.2)) pairs.push([random.pick(['service_level', 'unknown', 'oauth_token', '__proto__', 'constructor']), random.pick(ODD_VALUES)]);
  if (random.chance(0.15) && pairs.length > 0) pairs.push([random.pick(pairs)[0], random.pick(ODD_VALUES)]);
  if (random.chance(0.03)) pairs.push(['huge', 'h'.repeat(random.pick([10_000, 200_000, 1_100_000]))]);
  return pairs;
}

const ROUTE_PARAMS: Record<string, readonly string[]> = {
  accounts: ['email', 'status', 'status_ok', 'limit', 'offset', 'first_name', 'last_name', 'server', 'username', 'port', 'use_ssl', 'type'],
  account: ['first_name', 'last_name'],
  sources: ['status', 'status_ok'],
  tokens: ['callback_url', 'email', 'first_name', 'last_name', 'source_callback_url', 'source_sync_all_folders', 'source_sync_flags', 'source_raw_file_list', 'status_callback_url'],
};

/** An id for a path: an existing one mostly (by its place in the model), else an odd one, encoded or not. */
function idFrom(random: Random, known: readonly string[]): string {
  if (known.length > 0 && random.chance(0.65)) return encodeURIComponent(random.pick(known));
  return random.chance(0.05) ? random.pick(RAW_UNICODE_IDS) : random.pick(ODD_IDS);
}

function apiPath(random: Random, model: Model): { path: string; params: readonly string[] } {
  const account = () => idFrom(random, model.accounts);
  const token = (owner: string | null) => idFrom(random, [...model.tokens].filter(([, t]) => t.owner === owner || random.chance(0.1)).map(([id]) => id));
  const slash = () => (random.chance(0.15) ? '/' : '');
  // The account list three times in 13: its answer depends on most parameters.
  switch (random.int(13)) {
    case 0: case 11: case 12: return { path: `/accounts${slash()}`, params: ROUTE_PARAMS['accounts']! };
    case 1: return { path: `/accounts/${account()}${slash()}`, params: ROUTE_PARAMS['account']! };
    case 2: return { path: `/accounts/${account()}/sources${slash()}`, params: ROUTE_PARAMS['sources']! };
    case 3: return { path: `/accounts/${account()}/sources/${random.pick(['0', '1', 'me%3A%3Amail.example.com', 'ada%3A%3Aimap.lovelace.example', ...ODD_IDS])}${slash()}`, params: [] };
    case 4: {
      const id = account();
      return { path: `/accounts/${id}/connect_tokens${slash()}`, params: ROUTE_PARAMS['tokens']! };
    }
    case 5: {
      const id = random.chance(0.8) ? account() : random.pick(ODD_IDS);
      return { path: `/accounts/${id}/connect_tokens/${token(model.accounts.find((a) => encodeURIComponent(a) === id) ?? null)}${slash()}`, params: [] };
    }
    case 6: return { path: `/connect_tokens${slash()}`, params: ROUTE_PARAMS['tokens']! };
    case 7: return { path: `/connect_tokens/${token(null)}${slash()}`, params: [] };
    case 8: return { path: random.pick(['', '/', '/messages', '/accounts/x/messages', '/accounts//sources', '/connect_tokens/a/b', '/../accounts', '/accounts/%2e%2e/sources', '//accounts', '/accounts/a/sources/b/c']), params: [] };
    case 9: return { path: `/accounts/${account()}/${random.pick(['contacts', 'sources/0/folders', 'connect_tokens/x/y', 'CONNECT_TOKENS', ''])}`, params: [] };
    default: return { path: `/${random.pick(['ACCOUNTS', 'Accounts', 'accounts;x', 'accounts.json', 'accounts%2F', 'connect_tokens%2Fx'])}`, params: [] };
  }
}

const METHODS = ['GET', 'GET', 'GET', 'POST', 'POST', 'DELETE', 'HEAD', 'PUT', 'PATCH', 'OPTIONS'];

/** How a request is signed wrongly (contextio-2.0.md: any of these is a 401 with code 105). */
const BAD_SIGNATURES = ['wrong signature', 'stale timestamp', 'future timestamp', 'reused nonce', 'missing param', 'other path', 'other method', 'other body', 'wrong key', 'wrong secret', 'no header', 'bearer', 'HMAC-SHA256', 'version 2.0', 'query not signed', 'timestamp not a number', 'repeated param', 'two headers'];

interface Context {
  port: number;
  host: string;
  nowSeconds: number;
  /** Nonces of requests that passed verification: sent again with their timestamps, they must be refused. */
  usedNonces: Nonce[];
  /** The store's accounts' addresses, for the `email` filters drawn. */
  addresses: string[];
}

/** An API request: a known route with odd parts, signed rightly mostly. */
function fuzzedApiRequest(random: Random, model: Model, ctx: Context, index: number): Fuzzed {
  const method = random.pick(METHODS);
  const { path, params } = apiPath(random, model);
  const query = random.chance(params === ROUTE_PARAMS['accounts'] ? 0.8 : 0.4) ? encodePairs(random, paramsFor(random, params, ctx.addresses)) : '';
  const target = `/2.0${path}${query || random.chance(0.05) ? `?${query}` : ''}`;
  let bodyText = '';
  let contentType: string | undefined;
  if (method === 'POST' || random.chance(0.1)) {
    bodyText = encodePairs(random, paramsFor(random, params, ctx.addresses));
    contentType = random.pick([
      'application/x-www-form-urlencoded', 'application/x-www-form-urlencoded', 'application/x-www-form-urlencoded', 'application/x-www-form-urlencoded; charset=utf-8', 'APPLICATION/X-WWW-FORM-URLENCODED',
      'application/x-www-form-urlencodedx', 'text/plain', 'application/json', 'multipart/form-data; boundary=x', '', undefined,
    ]);
  }
  let body = Buffer.from(bodyText, 'utf8');
  if (random.chance(0.04)) body = Buffer.concat([body, Buffer.from(random.pick([[0xff], [0xc3], [0xed, 0xa0, 0x80], [0x00]]))]);
  const headers: Array<[string, string]> = [['Host', ctx.host], ['Connection', 'close']];
  if (contentType !== undefined) headers.push(['Content-Type', contentType]);

  // The body as the server reads it: what a client signs (contextio-2.0.md: the form body's parameters).
  let wire: Buffer | undefined;
  let seenBody = body;
  let broken = false;
  const framing = random.int(20);
  if (framing === 0 && body.length > 0) {
    const pieces: Buffer[] = [];
    for (let at = 0; at < body.length; ) {
      const size = 1 + random.int(Math.min(body.length - at, 64));
      pieces.push(Buffer.from(`${size.toString(16)}\r\n`), body.subarray(at, at + size), Buffer.from('\r\n'));
      at += size;
    }
    wire = Buffer.concat([...pieces, Buffer.from('0\r\n\r\n')]);
    headers.push(['Transfer-Encoding', 'chunked']);
  } else if (framing === 1 && body.length > 1) {
    // Declared shorter: the server reads that much, signed as such; the rest is a second request, which Node
    // refuses (and may cut the first answer short for it).
    const declared = random.int(body.length);
    headers.push(['Content-Length', String(declared)]);
    seenBody = body.subarray(0, declared);
    broken = true;
  } else if (framing === 2) {
    headers.push(['Content-Length', String(body.length + 1 + random.int(100))]);
    broken = true;
  } else if (framing === 3) {
    headers.push(['Content-Length', String(body.length)], ['Transfer-Encoding', 'chunked']);
    broken = true;
  } else if (framing === 4) {
    headers.push(['Content-Length', String(body.length)], ['Content-Length', String(body.length + 1)]);
    broken = true;
  } else if (framing === 5) {
    headers.push(['Content-Length', String(body.length)], ['Expect', '100-continue']);
  } else if (body.length > 0 || random.chance(0.5)) {
    headers.push(['Content-Length', String(body.length)]);
  }
  if (random.chance(0.03)) headers.push(['X-Forwarded-Proto', random.pick(['https', 'http', 'gopher'])]);

  const nonce = `n${index}-${random.int(1e9)}`;
  const q = target.indexOf('?');
  const signing: Signing = {
    method,
    baseUrl: `http://${ctx.host}${q < 0 ? target : target.slice(0, q)}`,
    query: q < 0 ? '' : target.slice(q + 1),
    form: isForm(contentType) ? seenBody.toString('utf8') : '',
    nonce,
    timestamp: ctx.nowSeconds + random.int(601) - 300,
  };
  // Behind a proxy that says https, the client signed the https URL (api.ts requestScheme).
  if (headers.some(([name, value]) => name === 'X-Forwarded-Proto' && value === 'https')) signing.baseUrl = signing.baseUrl.replace('http:', 'https:');
  let badSignature: string | undefined;
  let header: string | undefined;
  if (random.chance(0.2)) {
    // A repeated parameter and two headers a quarter of the time: each is refused only by a check of its own, and a
    // run of 400 cases reached them a few times at most among the others.
    badSignature = random.chance(0.25) ? random.pick(['repeated param', 'two headers']) : random.pick(BAD_SIGNATURES);
    if (badSignature === 'reused nonce' && ctx.usedNonces.length === 0) badSignature = 'wrong signature';
    header = badlySigned(random, badSignature, signing, ctx);
  } else {
    header = authorization({ ...signing, ...(random.chance(0.1) ? { version: null } : {}) });
    // Spellings of the same header a server must take: the scheme's case, a realm, spaces (RFC 5849 §3.5.1).
    if (random.chance(0.1)) header = header.replace(/^OAuth /, random.pick(['oauth ', 'OAuth realm="x", ', 'OAuth  ']));
  }
  if (header !== undefined) headers.splice(2, 0, ['Authorization', header]);
  // Two Authorization headers, each the same good one: which a server reads is its own choice, so both are refused.
  if (header !== undefined && badSignature === 'two headers') headers.splice(random.int(headers.length + 1), 0, [random.pick(['Authorization', 'authorization']), header]);
  return { kind: badSignature ? `api, ${badSignature}` : 'api', method, target, headers, body, ...(wire ? { wire } : {}), ...(badSignature ? { badSignature } : {}), ...(broken ? { broken } : {}), nonce: { nonce, timestamp: signing.timestamp } };
}

function badlySigned(random: Random, how: string, s: Signing, ctx: Context): string | undefined {
  switch (how) {
    case 'wrong signature': {
      const good = authorization(s);
      const at = good.indexOf('oauth_signature="') + 'oauth_signature="'.length + random.int(20);
      return `${good.slice(0, at)}${good[at] === 'A' ? 'B' : 'A'}${good.slice(at + 1)}`;
    }
    case 'stale timestamp': return authorization({ ...s, timestamp: ctx.nowSeconds - 301 - random.int(1e6) });
    case 'future timestamp': return authorization({ ...s, timestamp: ctx.nowSeconds + 301 + random.int(1e6) });
    case 'timestamp not a number': return authorization(s).replace(/oauth_timestamp="\d+"/, `oauth_timestamp="${random.pick(['', '-1', '1e9', 'abc', `${ctx.nowSeconds}.5`, '9'.repeat(20)])}"`);
    // RFC 5849 §3.3: a nonce is unique among the requests of one timestamp, so only the two together are a replay.
    case 'reused nonce': return authorization({ ...s, ...random.pick(ctx.usedNonces) });
    case 'missing param': {
      const name = random.pick(['oauth_consumer_key', 'oauth_nonce', 'oauth_signature_method', 'oauth_timestamp', 'oauth_signature']);
      return authorization(s).replace(new RegExp(`${name}="[^"]*"(, )?`), '');
    }
    case 'other path': return authorization({ ...s, baseUrl: `${s.baseUrl}${random.pick(['/', 'x', '/../accounts'])}` });
    case 'other method': return authorization({ ...s, method: s.method === 'GET' ? 'POST' : 'GET' });
    case 'other body': return authorization({ ...s, form: `${s.form}&extra=1` });
    case 'wrong key': return authorization({ ...s, key: 'another-key' });
    case 'wrong secret': return authorization({ ...s, secret: `${CONSUMER_SECRET}x` });
    case 'no header': return undefined;
    case 'bearer': return 'Bearer abc';
    // RFC 5849 §3.2: a request repeating a protocol parameter is refused, even when both say the same (signed) value.
    case 'repeated param': {
      const good = authorization(s);
      const name = random.pick(['oauth_consumer_key', 'oauth_nonce', 'oauth_signature_method', 'oauth_timestamp', 'oauth_signature', 'oauth_version']);
      const param = new RegExp(`${name}="[^"]*"`).exec(good)?.[0] ?? `oauth_signature="${/oauth_signature="([^"]*)"/.exec(good)![1]}"`;
      return `${good}, ${param}`;
    }
    case 'two headers': return authorization(s);
    case 'HMAC-SHA256': return authorization({ ...s, signatureMethod: 'HMAC-SHA256' });
    case 'version 2.0': return authorization({ ...s, version: '2.0' });
    // A query the signature leaves out, or one it has that the request does not.
    default: return authorization({ ...s, query: s.query && pairsOf(s.query)?.length ? '' : 'a=1' });
  }
}

// ---- the model's expectations -----------------------------------------------------------------------------

/** The path's decoded segments as the API routes them (a trailing slash tolerated); `undefined` when malformed. */
function segmentsOf(path: string): string[] | undefined {
  const raw = path.split('/').slice(1);
  if (raw.length > 0 && raw[raw.length - 1] === '') raw.pop();
  try {
    return raw.map((segment) => decodeURIComponent(segment));
  } catch {
    return undefined;
  }
}

interface Expectation {
  statuses: number[];
  /** Applies a success to the model. */
  effect?: (body: Record<string, unknown>) => void;
  /** The body a 200 must have, exactly. */
  body?: () => unknown;
}

/** The request's parameters as the API reads them: the form's (a form body only) before the query's, the first of a name. */
function paramsOf(fuzz: Fuzzed): Map<string, string> {
  const q = fuzz.target.indexOf('?');
  const form = isForm(fuzz.headers.find(([name]) => name === 'Content-Type')?.[1]) ? (pairsOf(fuzz.body.toString('utf8')) ?? []) : [];
  const query = q < 0 ? [] : (pairsOf(fuzz.target.slice(q + 1)) ?? []);
  const params = new Map<string, string>();
  for (const [name, value] of [...form, ...query]) if (!params.has(name)) params.set(name, value);
  return params;
}

/** A count parameter as contextio-2.0.md has it: absent, or a whole number written in digits from `min` to `max`. */
function countParam(params: Map<string, string>, name: string, min: number, max: number): number | undefined | 'invalid' {
  const raw = params.get(name);
  if (raw === undefined) return undefined;
  const value = /^[0-9]+$/.test(raw) ? Number(raw) : Number.NaN;
  return value >= min && value <= max ? value : 'invalid';
}

/**
 * GET /accounts's answer, worked out from contextio-2.0.md and the store's accounts one by one (not its list):
 * `status_ok` is `0`, `1` or blank, `limit` 1–100 and `offset` from 0, else 400; then the accounts of the `email`
 * given (trimmed, in any case: an address matches whatever its case), of a source of `status` (exactly) and of a
 * source OK or not OK by `status_ok`, each with those sources only, from `offset`, `limit` of them.
 */
function accountsList(params: Map<string, string>, model: Model, store: Emulator['store']): Expectation {
  const statusOkRaw = params.get('status_ok') ?? '';
  const limit = countParam(params, 'limit', 1, 100);
  const offset = countParam(params, 'offset', 0, Number.MAX_SAFE_INTEGER);
  if (!['', '0', '1'].includes(statusOkRaw) || limit === 'invalid' || offset === 'invalid') return { statuses: [400] };
  return {
    statuses: [200],
    body: () => {
      const email = params.get('email')?.trim().toLowerCase() || undefined;
      const status = params.get('status') || undefined;
      const statusOk = statusOkRaw === '' ? undefined : statusOkRaw === '1';
      const bySource = status !== undefined || statusOk !== undefined;
      const wanted = (source: { status?: string }) => (status === undefined || source.status === status) && (statusOk === undefined || (source.status === 'OK') === statusOk);
      const start = offset ?? 0;
      return model.accounts
        .map((id) => store.getAccount(id)!)
        .filter((account) => email === undefined || account.email_addresses.some((address) => address.toLowerCase() === email))
        .filter((account) => !bySource || account.sources.some(wanted))
        .map((account) => ({ ...account, sources: account.sources.filter(wanted) }))
        .slice(start, limit === undefined ? undefined : start + limit);
    },
  };
}

/**
 * The answers a verified request to the API may get, from contextio-2.0.md's routes and the model. 405 is no
 * status the document lists: RFC 9110 §15.5.6's answer to a method a resource does not take, with `Allow`.
 */
function expectation(method: string, path: string, model: Model, params: Map<string, string>, store: Emulator['store']): Expectation {
  const seg = segmentsOf(path);
  if (!seg) return { statuses: [400] };
  const verb = method === 'HEAD' ? 'GET' : method;
  const [first, id, sub, item] = seg;
  const allowed = (methods: Record<string, () => Expectation>): Expectation => methods[verb]?.() ?? { statuses: [405] };
  const hasAccount = (account: string) => model.accounts.includes(account);
  const removeAccount = (account: string) => {
    model.accounts = model.accounts.filter((a) => a !== account);
    for (const [token, t] of model.tokens) if (t.owner === account) model.tokens.delete(token);
  };
  const tokenOf = (token: string, owner: string | null) => model.tokens.get(token)?.owner === owner;
  if (first === 'accounts') {
    if (id === undefined) {
      return allowed({
        GET: () => accountsList(params, model, store),
        POST: () => ({ statuses: [201, 400], effect: (body) => void model.accounts.push(String(body['id'])) }),
      });
    }
    if (id === '' || seg.length > 4) return { statuses: [404] };
    const known = hasAccount(id);
    if (sub === undefined) {
      return allowed({
        GET: () => ({ statuses: [known ? 200 : 404] }),
        POST: () => ({ statuses: [known ? 200 : 404] }),
        DELETE: () => ({ statuses: [known ? 200 : 404], effect: () => removeAccount(id) }),
      });
    }
    if (sub === 'sources') {
      if (item === undefined) return allowed({ GET: () => ({ statuses: known ? [200, 400] : [404] }) });
      return allowed({ GET: () => ({ statuses: known ? [200, 404] : [404] }) });
    }
    if (sub === 'connect_tokens') {
      if (item === undefined) {
        return allowed({
          GET: () => ({ statuses: [known ? 200 : 404] }),
          POST: () => ({ statuses: known ? [201, 400] : [404], effect: (body) => void model.tokens.set(String(body['token']), { owner: id, used: false }) }),
        });
      }
      const found = known && tokenOf(item, id);
      return allowed({
        GET: () => ({ statuses: [found ? 200 : 404] }),
        DELETE: () => ({ statuses: [found ? 200 : 404], effect: () => void model.tokens.delete(item) }),
      });
    }
    return { statuses: [404] };
  }
  if (first === 'connect_tokens' && seg.length <= 2) {
    if (id === undefined) {
      return allowed({
        GET: () => ({ statuses: [200] }),
        POST: () => ({ statuses: [201, 400], effect: (body) => void model.tokens.set(String(body['token']), { owner: null, used: false }) }),
      });
    }
    const found = tokenOf(id, null);
    return allowed({
      GET: () => ({ statuses: [found ? 200 : 404] }),
      DELETE: () => ({ statuses: [found ? 200 : 404], effect: () => void model.tokens.delete(id) }),
    });
  }
  return { statuses: [404] };
}

// ---- invariants -----------------------------------------------------------------------------------------------

function header(answer: Answer, name: string): string | undefined {
  return answer.headers.get(name);
}

/** Why an API answer breaks what contextio-2.0.md promises, or `undefined`. */
function brokenApiAnswer(fuzz: Fuzzed, answer: Answer | undefined, expected: Expectation | undefined, ctx: Context): string | undefined {
  if (answer === undefined) return fuzz.broken ? undefined : 'no answer';
  if (answer.status >= 500) return `status ${answer.status}`;
  if (answer.text.includes(CONSUMER_SECRET)) return 'the consumer secret in the answer';
  if (STACK_TRACE.test(answer.text)) return 'a stack trace';
  const signature = /oauth_signature="([^"]{8,})"/.exec(fuzz.headers.find(([name]) => name === 'Authorization')?.[1] ?? '')?.[1];
  if (signature && [signature, pairsOf(`s=${signature}`)?.[0]?.[1] ?? signature].some((form) => answer.text.includes(form))) return 'the request’s signature in the answer';
  // Refusals of a request Node's parser cannot read (two Content-Lengths, a line too long, raw UTF-8 in the
  // target, which llhttp refuses), in the API's error shape (a bare status line is no answer of the API's).
  if ((answer.status === 400 || answer.status === 431) && /^\{"type":"error","value":"(malformed HTTP\/1\.1 request|request line and headers larger than )/.test(answer.text)) {
    return fuzz.broken || fuzz.target.length > 2_000 || hasRawUnicode(fuzz) ? undefined : `${answer.status} from the HTTP layer`;
  }
  // contextio-2.0.md "Conventions": `Content-Type: application/json` exactly.
  if (header(answer, 'content-type') !== 'application/json') return `content type ${JSON.stringify(header(answer, 'content-type'))}`;
  if (fuzz.method === 'HEAD') {
    if (answer.text !== '') return 'a body to HEAD';
  } else {
    let body: unknown;
    try {
      body = JSON.parse(answer.text);
    } catch {
      return 'an answer that is not JSON';
    }
    if (answer.status >= 400) {
      // contextio-2.0.md "Errors": `{"type":"error","value":"…"}`, sometimes with a numeric code.
      const error = body as Record<string, unknown>;
      if (typeof error !== 'object' || error === null || error['type'] !== 'error' || typeof error['value'] !== 'string') return 'an error body not {type:"error", value}';
      const extra = Object.keys(error).filter((key) => !['type', 'value', 'code'].includes(key));
      if (extra.length > 0 || ('code' in error && typeof error['code'] !== 'number')) return `error body fields ${JSON.stringify(Object.keys(error))}`;
      if (answer.status === 401 && error['code'] !== 105) return '401 without code 105';
    } else if (answer.status === 201) {
      const created = body as Record<string, unknown>;
      if (created['success'] !== true || typeof created['resource_url'] !== 'string') return 'a 201 without success and resource_url';
      if (!(/^[0-9a-f]{24}$/.test(String(created['id'])) || (/^[a-z0-9]{16}$/.test(String(created['token'])) && typeof created['browser_redirect_url'] === 'string'))) return 'a 201 without a well-formed id or token';
    }
  }
  if (answer.status === 401 && !header(answer, 'www-authenticate')?.startsWith('OAuth ')) return '401 without an OAuth challenge';
  if (answer.status === 405 && !header(answer, 'allow')) return '405 without Allow';
  if (answer.status === 413) return undefined;
  // A bad signature is refused before anything else is looked at (contextio-2.0.md "Authentication").
  if (fuzz.badSignature) return answer.status === 401 ? undefined : `status ${answer.status} to a request with a bad signature`;
  if (answer.status === 401) {
    // Malformed percent-encoding in a signed part has no base string, so no signature can match it (oauth.ts).
    const q = fuzz.target.indexOf('?');
    const formType = fuzz.headers.find(([name]) => name === 'Content-Type')?.[1];
    const malformed = (q >= 0 && pairsOf(fuzz.target.slice(q + 1)) === undefined) || (isForm(formType) && pairsOf(fuzz.body.toString('utf8')) === undefined);
    return malformed || fuzz.broken || hasRawUnicode(fuzz) ? undefined : `401 to a rightly signed request: ${answer.text}`;
  }
  if (fuzz.broken) return undefined;
  if (hasRawUnicode(fuzz)) return undefined;
  if (expected && !expected.statuses.includes(answer.status)) return `status ${answer.status}, expected ${expected.statuses.join(' or ')}`;
  if (expected?.body && answer.status === 200 && fuzz.method !== 'HEAD') {
    const want = JSON.stringify(expected.body());
    if (JSON.stringify(JSON.parse(answer.text)) !== want) return `not the body the parameters ${JSON.stringify([...paramsOf(fuzz)])} give: ${want.slice(0, 600)}`;
  }
  // A valid operation's parameters are all valid: no 400 (its 404s and 405s come from the model).
  if (fuzz.kind === 'valid operation' && answer.status === 400) return `400 to a valid operation: ${answer.text}`;
  ctx.usedNonces.push(fuzz.nonce!);
  return undefined;
}

/** Attributes the connect page's tags may have: one outside these is markup made of a reflected value. */
const PAGE_ATTRIBUTES = new Set([
  'lang', 'charset', 'name', 'content', 'rel', 'href', 'role', 'id', 'class', 'tabindex', 'autofocus', 'method', 'action', 'type', 'value', 'for',
  'required', 'autocomplete', 'placeholder', 'aria-invalid', 'aria-describedby', 'aria-hidden', 'pattern', 'maxlength', 'inputmode', 'title', 'spellcheck', 'autocapitalize', 'checked', 'style',
]);

/** Why a connect page's HTML shows reflected markup, or `undefined`. */
function brokenPage(html: string, sent: readonly string[]): string | undefined {
  for (const value of sent) if (/[<>"']/.test(value) && value.length > 3 && html.includes(value)) return `the value ${JSON.stringify(value)} unescaped`;
  const scripts = html.match(/<script/gi) ?? [];
  if (scripts.length > 1 || (scripts.length === 1 && html.indexOf('<script') < html.indexOf('</main>'))) return 'a script element of the input';
  if (/<(img|svg|iframe|object)\b/i.test(html)) return 'an element made of the input';
  for (const [, tag, attributes] of html.matchAll(/<([a-z][a-z0-9]*)\b([^>]*)>/gi)) {
    const rest = attributes!.replace(/\s+([a-z-]+)(="[^"<>]*")?/gi, (_whole, name: string) => {
      if (!PAGE_ATTRIBUTES.has(name.toLowerCase())) throw new Error(`attribute ${name} on <${tag}>`);
      return '';
    });
    if (rest.trim() !== '' && rest.trim() !== '/') return `<${tag}> attributes broken: ${JSON.stringify(rest)}`;
  }
  return undefined;
}

// ---- the run --------------------------------------------------------------------------------------------------

function described(fuzz: Fuzzed): string {
  const shown = (text: string) => (text.length > 600 ? `${text.slice(0, 600)}… (${text.length} characters)` : text);
  return `${fuzz.method} ${shown(fuzz.target)}\n${fuzz.headers.map(([k, v]) => `${k}: ${shown(v)}`).join('\n')}\n\n${shown(fuzz.body.toString('utf8'))}`;
}

function headOf(fuzz: Fuzzed): string {
  return `${fuzz.method} ${fuzz.target} HTTP/1.1\r\n${fuzz.headers.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
}

function hasRawUnicode(fuzz: Fuzzed): boolean {
  return /[^\x20-\x7e]/.test(fuzz.target);
}

type StoreInternals = { snapshot(): { accounts: Array<{ id: string; email_addresses: string[]; sources: Array<{ label: string }> }>; tokens: Array<{ token: string; owner: string | null; used: number; account_id?: string; account_snapshot?: unknown }> } };

function snapshotOf(emulator: Emulator): ReturnType<StoreInternals['snapshot']> {
  // The store's own whole state (private: no public call lists every token), as it would save it.
  return structuredClone((emulator.store as unknown as StoreInternals).snapshot());
}

/** Why the store disagrees with the model or with itself, or `undefined`. */
function brokenStore(emulator: Emulator, model: Model): string | undefined {
  const state = snapshotOf(emulator);
  const ids = state.accounts.map((a) => a.id);
  if (new Set(ids).size !== ids.length) return 'two accounts with one id';
  if (JSON.stringify(ids) !== JSON.stringify(model.accounts)) return `accounts ${JSON.stringify(ids)}, the answers said ${JSON.stringify(model.accounts)}`;
  for (const account of state.accounts) {
    const labels = account.sources.map((s) => s.label);
    if (new Set(labels).size !== labels.length) return `account ${account.id}: two sources labelled alike`;
  }
  for (const token of state.tokens) {
    if (token.owner !== null && !ids.includes(token.owner)) return `token ${token.token} of account ${token.owner}, which is gone`;
    if (token.used !== 0 && !ids.includes(token.account_id ?? '') && token.account_snapshot === undefined) return `used token ${token.token} embeds nothing`;
    const known = model.tokens.get(token.token);
    if (!known || known.owner !== token.owner || known.used !== (token.used !== 0)) return `token ${token.token} ${JSON.stringify({ owner: token.owner, used: token.used })}, the answers said ${JSON.stringify(known)}`;
  }
  if (state.tokens.length !== model.tokens.size) return `${state.tokens.length} tokens, the answers said ${model.tokens.size}`;
  return undefined;
}

/** Signed GET through the fuzz's own sender, for the list-against-item checks. */
async function get(ctx: Context, path: string, index: number): Promise<{ status: number; body: unknown }> {
  const target = `/2.0${path}`;
  const auth = authorization({ method: 'GET', baseUrl: `http://${ctx.host}${target}`, query: '', form: '', nonce: `check-${index}-${path}`, timestamp: ctx.nowSeconds });
  const answer = await send(ctx.port, `GET ${target} HTTP/1.1\r\nHost: ${ctx.host}\r\nConnection: close\r\nAuthorization: ${auth}\r\n\r\n`, Buffer.alloc(0), false);
  return { status: answer?.status ?? 0, body: answer ? JSON.parse(answer.text) : undefined };
}

/** Why the lists disagree with the single GETs (or the store), or `undefined`. */
async function brokenLists(emulator: Emulator, ctx: Context, index: number): Promise<string | undefined> {
  const accounts = await get(ctx, '/accounts', index);
  if (JSON.stringify(accounts.body) !== JSON.stringify(emulator.store.listAccounts())) return 'GET /accounts is not the store’s list';
  for (const account of accounts.body as Array<{ id: string; sources: Array<{ label: string }> }>) {
    const one = await get(ctx, `/accounts/${encodeURIComponent(account.id)}`, index);
    if (JSON.stringify(one.body) !== JSON.stringify(account)) return `GET /accounts/${account.id} is not its list entry`;
    const sources = await get(ctx, `/accounts/${encodeURIComponent(account.id)}/sources`, index);
    if (JSON.stringify(sources.body) !== JSON.stringify(account.sources)) return `the sources of ${account.id} are not its entry's`;
    for (const source of account.sources) {
      const single = await get(ctx, `/accounts/${encodeURIComponent(account.id)}/sources/${encodeURIComponent(source.label)}`, index);
      if (JSON.stringify(single.body) !== JSON.stringify(source)) return `source ${source.label} of ${account.id} is not its entry`;
    }
    const tokens = await get(ctx, `/accounts/${encodeURIComponent(account.id)}/connect_tokens`, index);
    for (const token of tokens.body as Array<{ token: string }>) {
      const single = await get(ctx, `/accounts/${encodeURIComponent(account.id)}/connect_tokens/${token.token}`, index);
      if (JSON.stringify(single.body) !== JSON.stringify(token)) return `token ${token.token} of ${account.id} is not its entry`;
    }
  }
  const tokens = await get(ctx, '/connect_tokens', index);
  for (const token of tokens.body as Array<{ token: string }>) {
    const single = await get(ctx, `/connect_tokens/${token.token}`, index);
    if (JSON.stringify(single.body) !== JSON.stringify(token)) return `token ${token.token} is not its entry`;
  }
  return undefined;
}

/**
 * GET /accounts's query as a client sends it: each filter valid (or blank) and now and then left out, and a page;
 * with `oneBad`, one value of `status_ok`, `limit` or `offset` that is refused (alone, so that the 400 is for it).
 */
function listQuery(random: Random, addresses: readonly string[], oneBad = false): string {
  const pairs: OAuthParam[] = [];
  // An address matches one account or none: paged past it (an offset) the list would be empty whatever it matched.
  const email = random.chance(0.6);
  if (email) pairs.push(['email', addressLike(random, addresses)]);
  if (random.chance(0.3)) pairs.push(['status', random.pick(['OK', 'INVALID_CREDENTIALS', 'CONNECTION_IMPOSSIBLE', 'DISABLED', ''])]);
  if (random.chance(0.3)) pairs.push(['status_ok', random.pick(['0', '1', ''])]);
  if (random.chance(0.6)) pairs.push(['limit', String(random.pick([1, 1, 2, 2, 3, 4, 100]))]);
  if (random.chance(email ? 0.1 : 0.5)) pairs.push(['offset', String(random.int(email ? 2 : 6))]);
  if (oneBad) {
    const [name, values] = random.pick<[string, string[]]>([
      ['status_ok', ['true', 'false', '2', ' 1', '01', 'yes']],
      ['limit', ['0', '101', '-1', '1.5', '', ' 2', '1e1', '0x2']],
      ['offset', ['-1', '1.5', '', '1e1', '99999999999999999999', ' 1']],
    ]);
    const bad: OAuthParam = [name, random.pick(values)];
    const at = pairs.findIndex(([k]) => k === name);
    if (at >= 0) pairs[at] = bad;
    else pairs.push(bad);
  }
  return pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
}

/** A rightly signed GET /accounts, its filters and page drawn as a client sends them, one of them refused now and then. */
function listRequest(random: Random, ctx: Context, index: number): Fuzzed {
  const query = listQuery(random, ctx.addresses, random.chance(0.35));
  const nonce = `list-${index}`;
  const auth = authorization({ method: 'GET', baseUrl: `http://${ctx.host}/2.0/accounts`, query, form: '', nonce, timestamp: ctx.nowSeconds });
  return { kind: 'account list', method: 'GET', target: `/2.0/accounts?${query}`, headers: [['Host', ctx.host], ['Connection', 'close'], ['Authorization', auth]], body: Buffer.alloc(0), nonce: { nonce, timestamp: ctx.nowSeconds } };
}

/** A valid operation: one a real client would send, its answer as predictable as the model makes it. */
function validOperation(random: Random, model: Model, ctx: Context, index: number): Fuzzed {
  const account = model.accounts.length > 0 ? encodeURIComponent(random.pick(model.accounts)) : 'none';
  const ops: Array<[string, string, OAuthParam[]]> = [
    ['POST', '/accounts', [['email', `user${index}@example.com`], ['first_name', random.pick(['Ada', ...INJECTIONS])], ...(random.chance(0.5) ? ([['server', 'imap.example.com'], ['port', '993']] as OAuthParam[]) : [])]],
    ['POST', `/accounts/${account}`, [['last_name', random.pick(['Lovelace', 'Zoë', ...INJECTIONS])]]],
    ['DELETE', `/accounts/${account}`, []],
    ['POST', '/connect_tokens', [['callback_url', random.pick(CALLBACKS.slice(0, 4))], ...(random.chance(0.5) ? ([['email', random.pick([`${INJECTIONS[0]}@x.example`, '@gmail.com', `@${INJECTIONS[4]}`, 'me@example.com'])]] as OAuthParam[]) : []), ['first_name', random.pick(INJECTIONS)]]],
    ['POST', `/accounts/${account}/connect_tokens`, [['callback_url', random.pick(CALLBACKS.slice(0, 4))], ['last_name', random.pick(INJECTIONS)]]],
    ['GET', '/connect_tokens', []],
    ['GET', `/accounts?${listQuery(random, ctx.addresses)}`, []],
  ];
  const [owner, tokenId] = [...model.tokens].length > 0 ? [null, random.pick([...model.tokens.keys()])] : [null, 'none'];
  const scoped = model.tokens.get(tokenId)?.owner ?? owner;
  ops.push(['DELETE', scoped === null ? `/connect_tokens/${tokenId}` : `/accounts/${encodeURIComponent(scoped)}/connect_tokens/${tokenId}`, []]);
  ops.push(['GET', scoped === null ? `/connect_tokens/${tokenId}` : `/accounts/${encodeURIComponent(scoped)}/connect_tokens/${tokenId}`, []]);
  // Deletions less often than creations, so that the store does not empty itself.
  const [method, path, form] = random.pick([...ops, ops[0]!, ops[3]!, ops[4]!, ops[6]!, ops[6]!]);
  const target = `/2.0${path}`;
  const [bare = '', query = ''] = target.split('?');
  const body = Buffer.from(form.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&'));
  const nonce = `valid-${index}`;
  const auth = authorization({ method, baseUrl: `http://${ctx.host}${bare}`, query, form: body.toString(), nonce, timestamp: ctx.nowSeconds });
  const headers: Array<[string, string]> = [['Host', ctx.host], ['Connection', 'close'], ['Authorization', auth]];
  if (method === 'POST') headers.push(['Content-Type', 'application/x-www-form-urlencoded'], ['Content-Length', String(body.length)]);
  return { kind: 'valid operation', method, target, headers, body, nonce: { nonce, timestamp: ctx.nowSeconds } };
}

/** A connect page request: the form of a token, or its submission with values that try to break out of the page. */
function connectRequest(random: Random, model: Model, ctx: Context): { fuzz: Fuzzed; token: string | undefined; values: string[] } {
  const unused = [...model.tokens].filter(([, t]) => !t.used).map(([id]) => id);
  const token = random.chance(0.85) && unused.length > 0 ? random.pick(unused) : random.chance(0.5) && model.tokens.size > 0 ? random.pick([...model.tokens.keys()]) : undefined;
  const raw = token ?? random.pick(ODD_IDS.filter((id) => id !== '' && !id.includes('%2F') && id.length < 100));
  const method = random.pick(['GET', 'POST', 'POST', 'POST', 'HEAD', 'PUT']);
  const values: string[] = [];
  const headers: Array<[string, string]> = [['Host', ctx.host], ['Connection', 'close']];
  let body = Buffer.alloc(0);
  if (method === 'POST' || method === 'PUT') {
    const form: OAuthParam[] = [];
    for (const name of ['email', 'first_name', 'last_name', 'server', 'username', 'port', 'use_ssl', 'password', 'submission']) {
      if (!random.chance(0.7)) continue;
      const value =
        random.chance(0.4) ? random.pick(INJECTIONS)
        : name === 'email' ? random.pick([...EMAILS, `fuzz${random.int(1e6)}@example.com`])
        : name === 'port' ? random.pick(['993', '0', '65536', 'abc', '', '143'])
        : name === 'server' ? random.pick(['imap.example.com', 'bad server', 'imap.exämple.com'])
        : random.pick(ODD_VALUES);
      values.push(value);
      form.push([name, value]);
    }
    body = Buffer.from(encodePairs(random, form));
    headers.push(['Content-Type', random.pick(['application/x-www-form-urlencoded', 'application/x-www-form-urlencoded', 'text/plain', 'application/x-www-form-urlencoded; charset=UTF-8'])]);
    headers.push(['Content-Length', String(body.length)]);
  }
  return { fuzz: { kind: 'connect page', method, target: `/connect/${raw}${random.chance(0.1) ? '/' : ''}`, headers, body }, token, values };
}

interface Run {
  failures: string[];
  tally: Map<string, number>;
}

async function fuzz(t: TestContext, emulator: Emulator, internalErrors: string[]): Promise<Run> {
  const random = new Random(SEED);
  const port = Number(new URL(emulator.origin).port);
  const ctx: Context = { port, host: `127.0.0.1:${port}`, nowSeconds: Math.floor(START_MS / 1000), usedNonces: [], addresses: [] };
  const initial = snapshotOf(emulator);
  const model: Model = {
    accounts: initial.accounts.map((a) => a.id),
    tokens: new Map(initial.tokens.map((token) => [token.token, { owner: token.owner, used: token.used !== 0 }])),
    submissions: new Map(),
  };
  const run: Run = { failures: [], tally: new Map() };
  for (let index = 0; index < CASES; index++) {
    ctx.addresses = snapshotOf(emulator).accounts.flatMap((account) => account.email_addresses);
    const draw = random.next();
    let fuzzed: Fuzzed;
    let pageToken: string | undefined;
    let pageValues: string[] = [];
    if (draw < 0.25) fuzzed = validOperation(random, model, ctx, index);
    else if (draw < 0.4) ({ fuzz: fuzzed, token: pageToken, values: pageValues } = connectRequest(random, model, ctx));
    else if (draw < 0.5) fuzzed = listRequest(random, ctx, index);
    else fuzzed = fuzzedApiRequest(random, model, ctx, index);

    const before = JSON.stringify(snapshotOf(emulator));
    const isApi = fuzzed.target.startsWith('/2.0');
    const expected = isApi ? expectation(fuzzed.method, fuzzed.target.split('?')[0]!.slice('/2.0'.length), model, paramsOf(fuzzed), emulator.store) : undefined;
    const errorsBefore = internalErrors.length;
    let answer: Answer | undefined;
    let broken: string | undefined;
    try {
      answer = await send(port, headOf(fuzzed), fuzzed.wire ?? fuzzed.body, fuzzed.broken === true);
      if (isApi) broken = brokenApiAnswer(fuzzed, answer, expected, ctx);
      else broken = brokenConnectAnswer(fuzzed, answer, model, pageToken, pageValues);
    } catch (error) {
      broken = `no answer: ${(error as Error).message}`;
    }
    if (internalErrors.length > errorsBefore) broken ??= `internal error: ${internalErrors.slice(errorsBefore).join('; ')}`;
    const outcome = `${fuzzed.kind.replace(/,.*/, fuzzed.badSignature ? ', bad signature' : '')} → ${answer?.status ?? 'none'}`;
    run.tally.set(outcome, (run.tally.get(outcome) ?? 0) + 1);

    const succeeded = answer !== undefined && answer.status >= 200 && answer.status < 400;
    if (broken === undefined && succeeded && isApi && expected?.effect && !['GET', 'HEAD'].includes(fuzzed.method)) {
      expected.effect(JSON.parse(answer!.text) as Record<string, unknown>);
    }
    if (broken === undefined && succeeded && !isApi && answer!.status === 303 && pageToken) {
      const used = emulator.store.getConnectToken(pageToken);
      const entry = model.tokens.get(pageToken)!;
      const submission = pairsOf(fuzzed.body.toString('utf8'))?.find(([name]) => name === 'submission')?.[1];
      if (!entry.used && submission) model.submissions.set(pageToken, submission);
      entry.used = true;
      // A top-level token's flow made a new account (contextio-2.0.md "Connect tokens").
      if (entry.owner === null && used?.account && 'id' in used.account && !model.accounts.includes(used.account.id)) model.accounts.push(used.account.id);
    }
    const jsonAnswer = answer?.headers.get('content-type') === 'application/json';
    if (broken === undefined && fuzzed.broken && isApi && !jsonAnswer) {
      // A request whose framing broke (more bytes than its Content-Length: the rest, read as a second request, is
      // refused once the first is answered) and was answered other than in JSON was perhaps served: what it did is
      // not known from its answer, so the model learns it from the store.
      const state = snapshotOf(emulator);
      model.accounts = state.accounts.map((a) => a.id);
      model.tokens = new Map(state.tokens.map((token) => [token.token, { owner: token.owner, used: token.used !== 0 }]));
    } else if (broken === undefined && !(succeeded && !['GET', 'HEAD'].includes(fuzzed.method)) && JSON.stringify(snapshotOf(emulator)) !== before) {
      // Only a success changes anything: a refusal (a 401 before all) leaves the store as it was.
      broken = `the store changed on a ${answer?.status ?? 'missing'} answer`;
    }
    broken ??= brokenStore(emulator, model);
    if (broken === undefined && (index % 50 === 49 || index === CASES - 1)) broken = await brokenLists(emulator, ctx, index);
    if (broken !== undefined) {
      run.failures.push(`EMULATOR_FUZZ_SEED=${SEED} case ${index} (${fuzzed.kind}): ${broken}\n${described(fuzzed)}\n→ ${answer?.status} ${JSON.stringify([...(answer?.headers ?? [])])}\n${answer?.text.slice(0, 1_000)}`);
      break;
    }
  }
  for (const [outcome, count] of [...run.tally].sort((a, b) => b[1] - a[1])) t.diagnostic(`${count} × ${outcome}`);
  return run;
}

/** Why a connect page answer breaks the page's promises (escaped values, the flow's statuses), or `undefined`. */
function brokenConnectAnswer(fuzz: Fuzzed, answer: Answer | undefined, model: Model, token: string | undefined, values: readonly string[]): string | undefined {
  if (answer === undefined) return 'no answer';
  if (answer.status >= 500) return `status ${answer.status}`;
  if (answer.text.includes(CONSUMER_SECRET) || STACK_TRACE.test(answer.text)) return 'a secret or stack trace';
  const known = token === undefined ? undefined : model.tokens.get(token);
  const form = isForm(fuzz.headers.find(([name]) => name === 'Content-Type')?.[1]);
  const raw = /^\/connect\/([^/]*)/.exec(fuzz.target)![1]!;
  const submission = pairsOf(fuzz.body.toString('utf8'))?.find(([name]) => name === 'submission')?.[1];
  // connect-page.ts: the same form sent again (its mark) within ten minutes goes to the callback again.
  const resubmitted = token !== undefined && submission !== undefined && submission !== '' && model.submissions.get(token) === submission;
  const allowed =
    pairsOf(raw) === undefined && segmentsOf(`/${raw}`) === undefined ? [404]
    : fuzz.method === 'PUT' ? [405]
    : fuzz.method === 'POST' && !form ? [415]
    : fuzz.method === 'POST' && pairsOf(fuzz.body.toString('utf8')) === undefined ? [400]
    : !known ? [404]
    : known.used ? (resubmitted ? [303] : [410])
    : fuzz.method === 'POST' ? [303, 400]
    : [200];
  if (!allowed.includes(answer.status)) return `status ${answer.status}, expected ${allowed.join(' or ')}`;
  if (answer.status === 303) {
    const location = answer.headers.get('location') ?? '';
    return /^[\x21-\x7e]+$/.test(location) && location.includes(`contextio_token=${token}`) ? undefined : `Location ${JSON.stringify(location)}`;
  }
  if (!answer.headers.get('content-type')?.startsWith('text/html')) return `content type ${answer.headers.get('content-type')}`;
  if (fuzz.method === 'HEAD') return answer.text === '' ? undefined : 'a body to HEAD';
  try {
    return brokenPage(answer.text, values);
  } catch (error) {
    return (error as Error).message;
  }
}

describe(`emulator fuzz (EMULATOR_FUZZ_SEED=${SEED})`, () => {
  it(`${CASES} odd, badly signed and valid requests to the API and the connect page keep contextio-2.0.md's answers and a consistent store`, async (t) => {
    const internalErrors: string[] = [];
    const emulator = await startEmulator({
      port: 0,
      host: '127.0.0.1',
      seed: 'demo',
      consumerKey: CONSUMER_KEY,
      consumerSecret: CONSUMER_SECRET,
      now: manualClock(START_MS).now,
      onInternalError: (error, request) => internalErrors.push(`${request}: ${(error as Error | undefined)?.stack ?? String(error)}`),
    });
    try {
      const run = await fuzz(t, emulator, internalErrors);
      assert.deepEqual(run.failures, [], run.failures.join('\n\n'));
      assert.deepEqual(internalErrors, []);
      // Still answering after it all.
      const port = Number(new URL(emulator.origin).port);
      const last = await get({ port, host: `127.0.0.1:${port}`, nowSeconds: Math.floor(START_MS / 1000), usedNonces: [], addresses: [] }, '/accounts', -1);
      assert.equal(last.status, 200);
    } finally {
      await emulator.close();
    }
  });
});
