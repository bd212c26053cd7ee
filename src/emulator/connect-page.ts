import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { leftMidRequest } from '../http/body.ts';
import { escapeHtml } from '../support/html.ts';
import { MAX_EMAIL_LENGTH, MAX_NAME_LENGTH } from '../support/text-bounds.ts';
import { HttpError, decodePairs, firstValues, isFormBody, readBody, sendHtml } from './http.ts';
import { ConnectTokenError, type ConnectInput, type ConnectResult, type EmulatorStore } from './store.ts';
import { isDomainHint } from './persistence.ts';

/**
 * The browser side of the connect flow (`/connect/{token}`, outside `/2.0`, no OAuth): a form where the
 * user "connects" a mailbox, then a 303 back to the app's callback. Self-contained HTML, every value escaped.
 */

export interface ConnectPageContext {
  store: EmulatorStore;
  /** Clock in ms, the store's (`EmulatorOptions.now`): a test that moves it past the resubmit window sees the window end. */
  now: () => number;
  /** Posts the source callback; fire-and-forget, never blocks the redirect. */
  notifySourceCallback: (result: ConnectResult) => void;
  /** Told of a request answered 500 for an error of the emulator's own (`EmulatorOptions.onInternalError`). */
  onInternalError: (error: unknown, request: string) => void;
  /**
   * Tokens used through this page lately, with the mark of the form page that used them and where it went:
   * the same form sent again (a double click, a slow first answer) goes there too, instead of "already
   * used". Only a submission carrying that page's mark: the link alone does not reveal the app's callback.
   */
  recentlyUsed: Map<string, RecentUse>;
}

/** A token the connect page used: the mark of the form page that used it, where it went, and until when. */
interface RecentUse {
  submission: string;
  redirectUrl: string;
  until: number;
}

/** How long after its use a token's form, sent again from the same page, still leads to the app's callback. */
const RESUBMIT_WINDOW_MS = 10 * 60_000;
/** Bound on remembered submissions (a few hundred bytes each). */
const MAX_RECENTLY_USED = 10_000;

/**
 * The page of a link that names no token (`/connect/`, a token not percent-decodable, a path cut or run on:
 * `/connect/a/b`): a page for the person who opened it, not the API's JSON.
 */
export function sendInvalidLink(res: ServerResponse): void {
  sendHtml(res, 404, errorPage('Invalid link', 'This connect link is not valid.'));
}

/** Handles `GET|POST /connect/{token}`; `rawToken` is the raw path segment. */
export async function handleConnectPage(
  ctx: ConnectPageContext,
  req: IncomingMessage,
  res: ServerResponse,
  rawToken: string,
): Promise<void> {
  let token: string;
  try {
    token = decodeURIComponent(rawToken);
  } catch {
    return sendInvalidLink(res);
  }
  try {
    if (req.method === 'GET' || req.method === 'HEAD') return showForm(ctx, res, token);
    if (req.method === 'POST') return await submitForm(ctx, req, res, token);
    res.setHeader('Allow', 'GET, HEAD, POST');
    return sendHtml(res, 405, errorPage('Method not allowed', 'Open this page in a browser.'));
  } catch (error) {
    if (error instanceof HttpError) return sendHtml(res, error.status, errorPage('Bad request', error.message), error.headers);
    if (leftMidRequest(req)) return;
    // Its token left out: whoever holds it can connect a mailbox until it is used.
    ctx.onInternalError(error, `${req.method} /connect/{token}`);
    return sendHtml(res, 500, errorPage('Something went wrong', 'The emulator could not complete this request.'));
  }
}

function showForm(ctx: ConnectPageContext, res: ServerResponse, token: string): void {
  const state = ctx.store.connectTokenState(token);
  if (state !== 'usable') return sendTokenProblem(res, state);
  const details = ctx.store.connectTokenDetails(token)!;
  sendHtml(
    res,
    200,
    formPage(token, {
      first_name: details.first_name ?? '',
      last_name: details.last_name ?? '',
    }, details.email ?? undefined, details.owner !== null),
    {},
    DERIVE_SCRIPT_SOURCE,
  );
}

async function submitForm(ctx: ConnectPageContext, req: IncomingMessage, res: ServerResponse, token: string): Promise<void> {
  const body = await readBody(req);
  if (!isFormBody(req)) throw new HttpError(415, 'The form must be sent as application/x-www-form-urlencoded.');
  const form = firstValues(decodePairs(body, 'form body'));
  const state = ctx.store.connectTokenState(token);
  const earlier = ctx.recentlyUsed.get(token);
  const submission = form.get('submission') ?? '';
  if (state === 'used' && earlier && submission !== '' && earlier.submission === submission && ctx.now() < earlier.until) {
    res.writeHead(303, { Location: earlier.redirectUrl, 'Cache-Control': 'no-store', 'Content-Length': 0 });
    res.end();
    return;
  }
  if (state !== 'usable') return sendTokenProblem(res, state);
  const details = ctx.store.connectTokenDetails(token)!;

  const portText = form.get('port')?.trim();
  const input: ConnectInput = {
    use_ssl: form.has('use_ssl') && form.get('use_ssl') !== '0',
  };
  for (const name of ['email', 'first_name', 'last_name', 'server', 'username', 'password'] as const) {
    const value = form.get(name);
    if (value !== undefined) input[name] = value;
  }
  if (portText) input.port = /^\d{1,5}$/.test(portText) ? Number(portText) : Number.NaN;

  let result: ConnectResult;
  try {
    result = ctx.store.useConnectToken(token, input);
  } catch (error) {
    if (!(error instanceof ConnectTokenError)) throw error;
    if (error.reason !== 'invalid') return sendTokenProblem(res, error.reason);
    // Re-show what was typed (never the password) with the problem on top.
    const values: Record<string, string> = {};
    for (const [k, v] of form) if (k !== 'password') values[k] = v;
    return sendHtml(res, 400, formPage(token, values, details.email ?? undefined, details.owner !== null, error, input.use_ssl), {}, DERIVE_SCRIPT_SOURCE);
  }
  // Remembered as soon as the token is used, not once saved: the same form sent again while this answer waits for
  // a slow save (the double click this is for) would otherwise be told the link was already used.
  if (submission !== '') remember(ctx, token, { submission, redirectUrl: result.redirectUrl, until: ctx.now() + RESUBMIT_WINDOW_MS });
  // A save that failed is the operator's to see (the emulator's log), not the person connecting: the mailbox is
  // connected, in memory, and the application is told so.
  await ctx.store.flush();
  res.writeHead(303, { Location: result.redirectUrl, 'Cache-Control': 'no-store', 'Content-Length': 0 });
  res.end();
  ctx.notifySourceCallback(result);
}

function remember(ctx: ConnectPageContext, token: string, entry: RecentUse): void {
  const recent = ctx.recentlyUsed;
  // Insertion order is expiry order: the oldest go first, the expired ones, then any beyond the bound.
  const now = ctx.now();
  for (const [key, { until }] of recent) {
    if (until > now && recent.size < MAX_RECENTLY_USED) break;
    recent.delete(key);
  }
  recent.set(token, entry);
}

function sendTokenProblem(res: ServerResponse, state: 'missing' | 'used' | 'expired'): void {
  if (state === 'used') {
    return sendHtml(res, 410, errorPage('Link already used', 'This connect link has already been used to connect a mailbox. Ask the application for a new one.'));
  }
  if (state === 'expired') {
    return sendHtml(res, 410, errorPage('Link expired', 'This connect link has expired: links are valid for 24 hours. Ask the application for a new one.'));
  }
  return sendHtml(res, 404, errorPage('Unknown link', 'This connect link does not exist or has been deleted.'));
}

const STYLE = `
  *{box-sizing:border-box}
  body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;background:#f3f4f6;color:#111827}
  main{max-width:28rem;margin:3rem auto;background:#fff;border-radius:.75rem;padding:2rem;box-shadow:0 1px 3px rgba(0,0,0,.12)}
  h1{font-size:1.35rem;margin:0 0 .5rem}
  /* An address (the mailbox a token names) has no space to break at: it breaks anywhere rather than widen a phone's page. */
  p{margin:.25rem 0 1rem;color:#374151;overflow-wrap:anywhere}
  label{display:block;font-weight:600;margin-top:.9rem}
  .required{font-weight:400;color:#555}
  /* Fields' edges at 4.8:1 on white: WCAG 1.4.11 asks 3:1 of what shows where a control is. */
  input[type=text],input[type=email],input[type=password]{width:100%;padding:.5rem .6rem;margin-top:.25rem;border:1px solid #6b7280;border-radius:.375rem;font:inherit}
  input[aria-invalid=true]{border-color:#b91c1c}
  input:focus{outline:2px solid #2563eb;outline-offset:1px}
  .check{display:flex;gap:.5rem;align-items:center;font-weight:600;margin-top:.9rem}
  .check input{width:auto;margin:0}
  fieldset{border:1px solid #e5e7eb;border-radius:.5rem;margin:1.25rem 0 0;padding:.25rem 1rem 1rem}
  legend{font-weight:700;padding:0 .25rem}
  .row{display:flex;gap:1rem}.row>div{flex:1}
  .error{background:#fef2f2;color:#991b1b;border:1px solid #fecaca;border-radius:.375rem;padding:.6rem .8rem}
  .note{font-size:.85rem;color:#6b7280}
  /* A transparent border, not none: forced colours (Windows' contrast themes) draw it, where the blue goes. */
  button{margin-top:1.5rem;width:100%;padding:.65rem;border:1px solid transparent;border-radius:.375rem;background:#2563eb;color:#fff;font:inherit;font-weight:600;cursor:pointer}
  button:hover{background:#1d4ed8}
`;

function layout(title: string, body: string, script = ''): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} · Context.IO emulator</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body>
<main>
${body}
</main>${script ? `\n<script>${script}</script>` : ''}
</body>
</html>
`;
}

function errorPage(title: string, message: string): string {
  return layout(title, `<h1>${escapeHtml(title)}</h1>\n<p role="alert">${escapeHtml(message)}</p>`);
}

// Until the user edits them, the server and username follow the email they type. On a refused form that came back,
// one that is not what its email makes was edited before the refusal: it stays as typed.
const DERIVE_SCRIPT = `
(function(){
  var email=document.getElementById('email'),server=document.getElementById('server'),user=document.getElementById('username');
  if(!email||email.type==='hidden')return;
  var parts=email.value.split('@');
  if(email.value&&parts[1]&&server.value!=='imap.'+parts[1])server.dataset.touched='1';
  if(email.value&&user.value!==parts[0])user.dataset.touched='1';
  [server,user].forEach(function(el){el.addEventListener('input',function(){el.dataset.touched='1';});});
  email.addEventListener('input',function(){
    var parts=email.value.split('@');
    if(!server.dataset.touched&&parts[1])server.value='imap.'+parts[1];
    if(!user.dataset.touched)user.value=parts[0]||'';
  });
})();
`;
/** The script's source for the page's Content-Security-Policy: it, and no other inline script, runs. */
const DERIVE_SCRIPT_SOURCE = `'sha256-${createHash('sha256').update(DERIVE_SCRIPT).digest('base64')}'`;

/**
 * The address field: text, for which a phone still offers its email keyboard, checked by the store as it checks any
 * (the form comes back with the field in error). Not `type="email"`: browsers refuse a non-ASCII local part there
 * (`zoë@…`, RFC 6531), which the gateway takes from a caller, and send an internationalized domain in its ASCII
 * form (`zoe@xn--bcher-kva.example` for `zoe@bücher.example`), an address the gateway's `email` filter then misses.
 */
const EMAIL_FIELD = 'inputmode="email" autocomplete="email" autocapitalize="none" spellcheck="false"';

function formPage(
  token: string,
  values: Record<string, string>,
  tokenEmail: string | undefined,
  addsSource: boolean,
  error?: Pick<ConnectTokenError, 'message' | 'field'>,
  useSsl = true,
): string {
  // The token's address is the mailbox, not asked again; a domain hint (`@gmail.com`) only suggests one.
  const hint = tokenEmail !== undefined && isDomainHint(tokenEmail) ? tokenEmail : undefined;
  const fixedEmail = hint === undefined ? tokenEmail : undefined;
  const email = fixedEmail ?? values.email ?? '';
  const [local = '', domain = hint?.slice(1) ?? ''] = email.split('@');
  const value = (name: string, fallback = '') => escapeHtml(values[name] ?? fallback);
  // A refused form comes back focused on the field in error, which a screen reader then reads out with the
  // problem (role=alert alone is not announced on a page that loads with it). The token's own address, hidden, is
  // never the one in error: the store and the data file take only one the form accepts.
  const inError = error?.field;
  // A field in error is described by its problem; the server and username, otherwise, by the note that they may be
  // left as they are, which comes after the password field, where a screen reader going from field to field never is.
  const descriptionAndErrorMarks = (name: string) =>
    name === inError
      ? ' aria-invalid="true" aria-describedby="form-error" autofocus'
      : name === 'server' || name === 'username' ? ' aria-describedby="defaults-note"' : '';
  // A required field says so where it is seen; screen readers hear it from `required`, so the mark is hidden
  // from them (the field's name stays its label, "Port", not "Port (required)").
  const requiredMark = (extra: string) => (/\brequired\b/.test(extra) ? ' <span class="required" aria-hidden="true">(required)</span>' : '');
  const field = (name: string, label: string, type: string, extra = '', fallback = '') =>
    `<label for="${name}">${label}${requiredMark(extra)}</label>\n<input type="${type}" id="${name}" name="${name}" value="${value(name, fallback)}"${extra}${descriptionAndErrorMarks(name)}>`;

  const placeholder = hint === undefined ? '' : ` placeholder="you${escapeHtml(hint)}"`;
  const emailBlock = fixedEmail
    ? `<p>Mailbox: <strong>${escapeHtml(fixedEmail)}</strong></p>\n<input type="hidden" id="email" name="email" value="${escapeHtml(fixedEmail)}">`
    : field('email', 'Email address', 'text', ` required maxlength="${MAX_EMAIL_LENGTH}" ${EMAIL_FIELD}${placeholder}`);

  const body = `<h1>${addsSource ? 'Add a mailbox to your account' : 'Connect your mailbox'}</h1>
<p>This is the Context.IO emulator's connect page: no mail server is contacted and the password is not kept.</p>
${error ? `<p class="error" role="alert" id="form-error"${inError ? '' : ' tabindex="-1" autofocus'}>${escapeHtml(error.message)}</p>\n` : ''}<form method="post" action="/connect/${encodeURIComponent(token)}">
<input type="hidden" name="submission" value="${randomBytes(12).toString('hex')}">
${emailBlock}
${
  // Adding a mailbox to an account keeps the account's names: the flow would ignore any typed here.
  addsSource
    ? ''
    : `<div class="row">
<div>${field('first_name', 'First name', 'text', ` maxlength="${MAX_NAME_LENGTH}" autocomplete="given-name"`)}</div>
<div>${field('last_name', 'Last name', 'text', ` maxlength="${MAX_NAME_LENGTH}" autocomplete="family-name"`)}</div>
</div>
`
}<fieldset>
<legend>IMAP settings</legend>
${field('server', 'IMAP server', 'text', ' autocomplete="off" spellcheck="false"', domain ? `imap.${domain}` : '')}
${field('port', 'Port', 'text', ' required pattern="[0-9]{1,5}" maxlength="5" inputmode="numeric" title="A port number: 1 to 65535"', '993')}
<div class="check"><input type="checkbox" id="use_ssl" name="use_ssl" value="1"${useSsl ? ' checked' : ''}><label for="use_ssl" style="margin:0">Use SSL/TLS</label></div>
${field('username', 'Username', 'text', ` maxlength="${MAX_NAME_LENGTH}" autocomplete="username" spellcheck="false"`, local)}
<label for="password">Password</label>
<input type="password" id="password" name="password" value="" autocomplete="current-password">
<p class="note" id="defaults-note">Leave the server and username as they are to use the defaults for your address.</p>
</fieldset>
<button type="submit" id="connect">Connect mailbox</button>
</form>`;
  // A refused form's title says so: the first thing a screen reader reads of the page that came back.
  const title = addsSource ? 'Add a mailbox' : 'Connect your mailbox';
  return layout(error ? `Error: ${title}` : title, body, fixedEmail ? '' : DERIVE_SCRIPT);
}
