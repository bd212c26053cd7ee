import type { IncomingMessage, ServerResponse } from 'node:http';
import { leftMidRequest } from '../http/body.ts';
import { percentEncode } from '../oauth/signature.ts';
import type {
  UpstreamConnectToken,
  UpstreamCreateAccountResult,
  UpstreamCreateConnectTokenResult,
  UpstreamSuccess,
} from '../upstream/types.ts';
import { HttpError, firstValues, isFormBody, readBody, safelyDecoded, sendError, sendJson } from './http.ts';
import type { RequestTarget } from '../http/request.ts';
import { oauthChallenge, type OAuthVerifier } from './oauth.ts';
import type { HourlyRateLimit } from '../support/hourly-rate-limit.ts';
import { shortened } from '../support/shortened.ts';
import { isCallbackUrl, isHttpUrl } from '../support/url.ts';
import { retryAfterSeconds } from '../support/retry-after.ts';
import { mailServerName, type EmulatorStore, type NewConnectToken, type NewSource } from './store.ts';
import { isTokenEmail, looksLikeEmail } from './persistence.ts';

/** The `/2.0/...` REST API: OAuth verification, then routing to the store. */

export interface ApiContext {
  store: EmulatorStore;
  verifier: OAuthVerifier;
  /**
   * The key's calls an hour (`rateLimitPerHour`); absent, no limit. Counted on the monotonic clock, not the
   * emulator's wall clock (`EmulatorOptions.now`): set back (a day, by NTP or by hand), that clock would keep the
   * hour's calls in the window until it came round to them again, refusing every call for a day.
   */
  rateLimit?: HourlyRateLimit;
  /** `http://host:port`, for `browser_redirect_url`. */
  origin: string;
  /** `origin + '/2.0'`, for `resource_url`. */
  baseUrl: string;
  /** Told of a request answered 500 for an error of the emulator's own (`EmulatorOptions.onInternalError`). */
  onInternalError: (error: unknown, request: string) => void;
}

interface Result {
  status: number;
  body: unknown;
}

type Params = Map<string, string>;
type Handler = () => Result;

/** Handles one API request; the target's `path` is what follows `/2.0`, raw. */
export async function handleApiRequest(
  ctx: ApiContext,
  req: IncomingMessage,
  res: ServerResponse,
  { path, query, origin }: RequestTarget,
): Promise<void> {
  const method = req.method ?? 'GET';
  /** A body that is no form, as its Content-Type names it: read, but neither signed nor parsed. */
  let unreadBody: string | undefined;
  try {
    // The body is read whatever its type, so the connection stays usable; only a form is signed and parsed.
    const body = await readBody(req);
    if (body !== '' && !isFormBody(req)) unreadBody = shortened(req.headers['content-type'] || 'sent without a Content-Type', 100);
    const received = `${addressedOrigin(req, origin)}/2.0${path}`;
    const published = `${ctx.baseUrl}${path}`;
    const verdict = ctx.verifier.verify({
      method,
      baseUrls: received === published ? [received] : [received, published],
      authorization: req.headersDistinct['authorization'],
      query,
      form: isFormBody(req) ? body : '',
    });
    if (!verdict.ok) return sendError(res, 401, verdict.reason, 105, { 'WWW-Authenticate': oauthChallenge(ctx.baseUrl) });
    const wait = ctx.rateLimit?.take(performance.now()) ?? 0;
    if (wait > 0) {
      throw new HttpError(429, `rate limit reached: ${ctx.rateLimit!.limit} calls an hour for this key`, undefined, { 'retry-after': String(retryAfterSeconds(wait)) });
    }

    // Body values win over query values for the same name; the API itself sends forms.
    const params = firstValues([...verdict.form, ...verdict.query]);
    const result = route(ctx, method, splitPath(path), params);
    // A write is answered once it is on disk. Not saved, it stands in memory (served, and saved with the next
    // save that succeeds) but a stop before then loses it: the client must not take it for done. A read
    // changes nothing: it is answered whatever became of an earlier write's save.
    if (!READS.has(method) && (await ctx.store.flush()) !== undefined) {
      throw new HttpError(500, 'the change was made but could not be saved to the data file (see the emulator’s log): it is lost if the emulator stops before a later save succeeds');
    }
    sendJson(res, result.status, result.body);
  } catch (error) {
    if (error instanceof MissingParameter && unreadBody !== undefined) {
      // The parameter may be in it (JSON, multipart as `curl -F` sends): "missing" alone sent its sender looking for a typo.
      return sendError(res, 400, `${error.message} (the request's body, ${unreadBody}, is not read: parameters come in the query string or an application/x-www-form-urlencoded body)`);
    }
    if (error instanceof HttpError) return sendError(res, error.status, error.message, error.code, error.headers);
    if (leftMidRequest(req)) return;
    ctx.onInternalError(error, requestForLog(method, path));
    sendError(res, 500, 'internal server error');
  }
}

/** The 400 of a required parameter the request does not carry. */
class MissingParameter extends HttpError {
  constructor(name: string) {
    super(400, `missing required parameter: ${name}`);
  }
}

/** The scheme and host the client addressed: an absolute-form target's own, else the Host header's. */
function addressedOrigin(req: IncomingMessage, origin: RequestTarget['origin']): string {
  return origin ? `${origin.scheme}://${origin.host}` : `${requestScheme(req)}://${requestHost(req)}`;
}

function requestScheme(req: IncomingMessage): string {
  // Behind a TLS-terminating proxy the client signed an https URL; honour the usual header for that.
  const forwarded = String(req.headers['x-forwarded-proto'] ?? '').split(',')[0]?.trim().toLowerCase();
  return forwarded === 'https' ? 'https' : 'http';
}

function requestHost(req: IncomingMessage): string {
  if (req.headers.host) return req.headers.host;
  const { localAddress = '127.0.0.1', localPort } = req.socket;
  return `${localAddress.includes(':') ? `[${localAddress}]` : localAddress}:${localPort}`;
}

/**
 * A request as the line of its internal error names it: a connect token its path holds left out, as the connect
 * page's is (whoever holds one reads its account, or connects a mailbox until it is used), and cut short (a client
 * that failed before its signature was checked wrote the path as it liked).
 */
function requestForLog(method: string, path: string): string {
  const segments = path.split('/');
  for (let i = 1; i < segments.length - 1; i++) {
    if (safelyDecoded(segments[i]!) === 'connect_tokens' && segments[i + 1] !== '') segments[i + 1] = '{token}';
  }
  return `${method} /2.0${shortened(segments.join('/'), 200)}`;
}

/** Raw path to decoded segments; a trailing slash is tolerated. */
function splitPath(path: string): string[] {
  const raw = path.split('/').slice(1);
  if (raw.length > 0 && raw[raw.length - 1] === '') raw.pop();
  return raw.map((segment) => {
    try {
      return decodeURIComponent(segment);
    } catch {
      throw new HttpError(400, 'malformed path');
    }
  });
}

function route(ctx: ApiContext, method: string, seg: string[], params: Params): Result {
  const [first, id, sub, item] = seg;
  const unknown = (): never => {
    throw new HttpError(404, `unknown resource /${quoted(seg.join('/'))}`);
  };
  if (first === 'accounts') {
    if (id === undefined) return dispatch(method, { GET: () => listAccounts(ctx, params), POST: () => createAccount(ctx, params) });
    if (id === '' || seg.length > 4) return unknown();
    if (sub === undefined) {
      return dispatch(method, {
        GET: () => ok(requireAccount(ctx, id)),
        POST: () => updateAccount(ctx, id, params),
        DELETE: () => deleteAccount(ctx, id),
      });
    }
    if (sub === 'sources') {
      if (item === undefined) return dispatch(method, { GET: () => listSources(ctx, id, params) });
      return dispatch(method, { GET: () => getSource(ctx, id, item) });
    }
    if (sub === 'connect_tokens') {
      if (item === undefined) {
        return dispatch(method, {
          GET: () => {
            requireAccount(ctx, id);
            // Unpaged, as the reference has it: `limit`/`offset` are unknown here, so ignored.
            return ok(ctx.store.listConnectTokens(id).map(wireToken));
          },
          POST: () => createConnectToken(ctx, id, params),
        });
      }
      return dispatch(method, {
        GET: () => {
          requireAccount(ctx, id);
          return ok(wireToken(requireToken(ctx.store.getConnectToken(item, id), item)));
        },
        DELETE: () => {
          requireAccount(ctx, id);
          if (!ctx.store.deleteConnectToken(item, id)) throw tokenNotFound(item);
          return ok(success());
        },
      });
    }
    return unknown();
  }
  if (first === 'connect_tokens' && seg.length <= 2) {
    if (id === undefined) {
      return dispatch(method, {
        GET: () => ok(ctx.store.listConnectTokens(null).map(wireToken)),
        POST: () => createConnectToken(ctx, null, params),
      });
    }
    return dispatch(method, {
      // The top-level family only, like the list above: an account's tokens are reached under the account.
      GET: () => ok(wireToken(requireToken(ctx.store.getConnectToken(id, null), id))),
      DELETE: () => {
        if (!ctx.store.deleteConnectToken(id, null)) throw tokenNotFound(id);
        return ok(success());
      },
    });
  }
  return unknown();
}

/** The methods that only read: GET, and HEAD, which is a GET whose answer is sent without its body. */
const READS: ReadonlySet<string> = new Set(['GET', 'HEAD']);

/**
 * Runs the handler of `method`. HEAD runs GET's and is answered with the same status and headers,
 * `Content-Length` included, without the body (RFC 9110 §9.3.2; node:http leaves the body of a HEAD's answer
 * out): a resource read with GET can be probed with HEAD, as on any standard HTTP server. `Allow` says so too.
 */
function dispatch(method: string, handlers: Partial<Record<string, Handler>>): Result {
  const handler = handlers[method === 'HEAD' ? 'GET' : method];
  if (!handler) {
    const allow = Object.keys(handlers).flatMap((name) => (name === 'GET' ? ['GET', 'HEAD'] : [name])).join(', ');
    throw new HttpError(405, `method ${method} is not allowed on this resource (allowed: ${allow})`, undefined, { Allow: allow });
  }
  return handler();
}

const ok = (body: unknown, status = 200): Result => ({ status, body });
const success = (): UpstreamSuccess => ({ success: true });

// ---- accounts ---------------------------------------------------------------------------------

function listAccounts(ctx: ApiContext, params: Params): Result {
  const statusOk = flagFilter(params, 'status_ok');
  // Trimmed as POST /accounts trims the address it keeps.
  const email = params.get('email')?.trim();
  const accounts = ctx.store.listAccounts({
    ...(email ? { email } : {}),
    ...(params.get('status') ? { status: params.get('status')! } : {}),
    ...(statusOk === undefined ? {} : { status_ok: statusOk }),
  });
  return ok(page(accounts, params));
}

function createAccount(ctx: ApiContext, params: Params): Result {
  const email = params.get('email')?.trim();
  if (!email) throw new MissingParameter('email');
  if (!looksLikeEmail(email)) throw new HttpError(400, `email ${quoted(email)} is invalid`);
  // The reference lets POST /accounts carry a first source's parameters.
  const sources: NewSource[] = [];
  const server = optionalServer(params);
  if (server) {
    const port = params.has('port') ? integer(params, 'port', 1, 65_535) : undefined;
    sources.push({
      email,
      server,
      ...(params.get('username') ? { username: params.get('username')! } : {}),
      ...(port === undefined ? {} : { port }),
      ...(params.has('use_ssl') ? { use_ssl: requestFlag(params, 'use_ssl') } : {}),
      ...(params.get('type') ? { type: sourceType(params) } : {}),
    });
  }
  const account = ctx.store.createAccount({
    email,
    ...(params.has('first_name') ? { first_name: params.get('first_name')! } : {}),
    ...(params.has('last_name') ? { last_name: params.get('last_name')! } : {}),
    sources,
  });
  const body: UpstreamCreateAccountResult = { success: true, id: account.id, resource_url: account.resource_url! };
  return ok(body, 201);
}

function requireAccount(ctx: ApiContext, id: string) {
  const account = ctx.store.getAccount(id);
  if (!account) throw accountNotFound(id);
  return account;
}

/** The 404 of an account id the store does not know: one wording for every call, as `tokenNotFound` for tokens. */
function accountNotFound(id: string): HttpError {
  return new HttpError(404, `account ${quoted(id)} is invalid`);
}

function updateAccount(ctx: ApiContext, id: string, params: Params): Result {
  const patch = {
    ...(params.has('first_name') ? { first_name: params.get('first_name')! } : {}),
    ...(params.has('last_name') ? { last_name: params.get('last_name')! } : {}),
  };
  if (!ctx.store.updateAccount(id, patch)) throw accountNotFound(id);
  return ok(success());
}

function deleteAccount(ctx: ApiContext, id: string): Result {
  if (!ctx.store.deleteAccount(id)) throw accountNotFound(id);
  return ok(success());
}

// ---- sources ----------------------------------------------------------------------------------

function listSources(ctx: ApiContext, id: string, params: Params): Result {
  // The account first, as every route under it does: an unknown one is a 404 whatever its filters say.
  requireAccount(ctx, id);
  const statusOk = flagFilter(params, 'status_ok');
  const sources = ctx.store.listSources(id, {
    ...(params.get('status') ? { status: params.get('status')! } : {}),
    ...(statusOk === undefined ? {} : { status_ok: statusOk }),
  });
  if (!sources) throw accountNotFound(id);
  // Unpaged, as the reference has it: a frontend developing here must not come to rely on paging it lacks.
  return ok(sources);
}

function getSource(ctx: ApiContext, id: string, label: string): Result {
  requireAccount(ctx, id);
  const source = ctx.store.getSource(id, label);
  if (!source) throw new HttpError(404, `source ${quoted(label)} is invalid`);
  return ok(source);
}

// ---- connect tokens ---------------------------------------------------------------------------

function createConnectToken(ctx: ApiContext, accountId: string | null, params: Params): Result {
  if (accountId !== null) requireAccount(ctx, accountId);
  const callbackUrl = params.get('callback_url');
  if (!callbackUrl) throw new MissingParameter('callback_url');
  if (!isCallbackUrl(callbackUrl)) throw new HttpError(400, 'callback_url is invalid: it must be an absolute URL, http(s) or an app\'s own scheme');
  // The upstream calls these itself (the emulator calls source_callback_url): only http(s) is called.
  const sourceCallbackUrl = optionalHttpUrl(params, 'source_callback_url');
  const statusCallbackUrl = optionalHttpUrl(params, 'status_callback_url');
  const email = params.get('email')?.trim() || undefined;
  if (email && !isTokenEmail(email)) throw new HttpError(400, `email ${quoted(email)} is invalid`);

  const input: NewConnectToken = { callback_url: callbackUrl };
  if (email) input.email = email;
  if (params.has('first_name')) input.first_name = params.get('first_name')!;
  if (params.has('last_name')) input.last_name = params.get('last_name')!;
  if (sourceCallbackUrl) input.source_callback_url = sourceCallbackUrl;
  if (statusCallbackUrl) input.status_callback_url = statusCallbackUrl;
  for (const flag of ['source_sync_all_folders', 'source_sync_flags', 'source_raw_file_list'] as const) {
    if (params.has(flag)) input[flag] = requestFlag(params, flag);
  }
  const token = ctx.store.createConnectToken(accountId, input).token;
  const resourcePath =
    accountId === null ? '' : `/accounts/${percentEncode(accountId)}`;
  const body: UpstreamCreateConnectTokenResult = {
    success: true,
    token,
    resource_url: `${ctx.baseUrl}${resourcePath}/connect_tokens/${percentEncode(token)}`,
    browser_redirect_url: `${ctx.origin}/connect/${percentEncode(token)}`,
  };
  return ok(body, 201);
}

function requireToken(token: UpstreamConnectToken | undefined, id: string): UpstreamConnectToken {
  if (!token) throw tokenNotFound(id);
  return token;
}

function tokenNotFound(token: string): HttpError {
  return new HttpError(404, `connect_token ${quoted(token)} is invalid`);
}

/**
 * On the wire an unused token's account is `{}`, not null, and the strings the reference lists are there even
 * when none was given at creation: `""`, as an account's names are.
 */
function wireToken(token: UpstreamConnectToken): unknown {
  return {
    token: token.token,
    email: token.email ?? '',
    created: token.created,
    used: token.used,
    expires: token.expires,
    callback_url: token.callback_url,
    first_name: token.first_name ?? '',
    last_name: token.last_name ?? '',
    account: token.account ?? {},
  };
}

// ---- parameters -------------------------------------------------------------------------------

/** Applies `limit` (1–100) and `offset`; without `limit` the whole list is returned. */
function page<T>(items: T[], params: Params): T[] {
  const offset = params.has('offset') ? integer(params, 'offset', 0, Number.MAX_SAFE_INTEGER) : 0;
  const limit = params.has('limit') ? integer(params, 'limit', 1, 100) : undefined;
  return items.slice(offset, limit === undefined ? undefined : offset + limit);
}

function integer(params: Params, name: string, min: number, max: number): number {
  const raw = params.get(name) ?? '';
  const value = /^\d{1,16}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!(value >= min && value <= max)) {
    throw new HttpError(400, `invalid parameter ${name}: must be an integer from ${min} to ${max}`);
  }
  return value;
}

function flagFilter(params: Params, name: string): boolean | undefined {
  const raw = params.get(name);
  return raw === undefined || raw === '' ? undefined : requestFlag(params, name);
}

/**
 * A request flag, `0` or `1` as the API takes them (anything else is refused, as the API refuses an invalid
 * parameter): a client sending `true` would otherwise pass here and fail against the real API.
 */
function requestFlag(params: Params, name: string): boolean {
  const raw = params.get(name);
  if (raw !== '0' && raw !== '1') throw new HttpError(400, `invalid parameter ${name}: must be 0 or 1`);
  return raw === '1';
}

/**
 * A first source's `type`. IMAP is the only type the API serves, and a source names it `"imap"` (the reference's
 * sample), whatever case the request spelt it in (Context.IO's own documentation asks for `IMAP`); any other type
 * is an invalid parameter rather than a source shown with a type no Context.IO source has.
 */
function sourceType(params: Params): string {
  if (params.get('type')!.toLowerCase() !== 'imap') throw new HttpError(400, 'invalid parameter type: the only source type is IMAP');
  return 'imap';
}

/** An http(s) URL parameter: `undefined` when absent or blank, 400 when it is something else. */
function optionalHttpUrl(params: Params, name: string): string | undefined {
  const value = params.get(name) || undefined;
  if (value !== undefined && !isHttpUrl(value)) throw new HttpError(400, `${name} is invalid`);
  return value;
}

/**
 * POST /accounts's first source's `server`, as the connect page takes it (`mailServerName`): `undefined` when absent
 * or blank (a form sending its every field gives no first source), 400 when it is no host name.
 */
function optionalServer(params: Params): string | undefined {
  const given = params.get('server')?.trim();
  if (!given) return undefined;
  const server = mailServerName(given);
  if (server === undefined) throw new HttpError(400, `server ${quoted(given)} is invalid: a mail server's host name is letters, digits, dots and hyphens`);
  return server;
}

/**
 * A value the request sent, as an error quotes it back: the first 100 characters (a form body may hold 1 MiB of
 * it, and an answer echoing it whole costs both sides for nothing).
 */
function quoted(value: string): string {
  return shortened(value, 100);
}
