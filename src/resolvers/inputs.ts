import { argumentError } from '../errors.ts';
import type { CreateConnectTokenInput } from '../generated/graphql.ts';
import { MAX_FORM_VALUE_LENGTH } from '../upstream/request.ts';
import { isBrowserLocalScheme } from '../support/url.ts';
import { MAX_EMAIL_LENGTH, MAX_NAME_LENGTH } from '../support/text-bounds.ts';
import { HAS_HALF_PAIR, HAS_NAME_CONTROL, HAS_UNSEEN } from '../support/unseen-characters.ts';
import type { UpstreamAccountUpdateForm, UpstreamConnectTokenForm } from '../upstream/types.ts';

/** Mutation inputs checked and turned into the upstream's forms, so that a bad input costs no request. */

/** The upstream's form for a new connect token, checked first so a bad input costs no request. */
export function connectTokenForm(input: CreateConnectTokenInput): UpstreamConnectTokenForm {
  return {
    // The browser is sent there: a mobile app's own scheme (`cio-api-auth://`, as Context.IO's iOS example
    // registers) as much as a web page. The upstream's own server POSTs to the source callback: http(s) only.
    callback_url: absoluteUrl(input.callbackUrl, 'input.callbackUrl', 'browser'),
    email: input.email == null ? undefined : email(input.email, 'input.email', true),
    ...nameForm(input),
    source_callback_url: input.sourceCallbackUrl == null ? undefined : absoluteUrl(input.sourceCallbackUrl, 'input.sourceCallbackUrl', 'http'),
    source_sync_all_folders: input.sourceSyncAllFolders,
    source_sync_flags: input.sourceSyncFlags,
    source_raw_file_list: input.sourceRawFileList,
  };
}

/** The account holder's name, as every form that takes one (a new account, an update, a connect token) sends it. */
export function nameForm(input: { firstName?: string | null; lastName?: string | null }): UpstreamAccountUpdateForm {
  return { first_name: optionalName(input.firstName, 'input.firstName'), last_name: optionalName(input.lastName, 'input.lastName') };
}

/** A person's name: text (below) without the characters no name holds (HAS_NAME_CONTROL says which, and why). */
function optionalName(value: string | null | undefined, name: string): string | null | undefined {
  if (value == null) return value;
  text(value, name, MAX_NAME_LENGTH);
  if (HAS_NAME_CONTROL.test(value)) {
    throw argumentError(name, `${name} must not contain control characters (line breaks, tabs, NUL, directional overrides …)`);
  }
  return value;
}

/** Text on both sides of one `@` (what no address holds is refused before, `email`); the local part captured (empty for a domain hint). */
const EMAIL_ADDRESS = /^([^@]*)@[^@]+$/u;

/**
 * An absolute URL, sent in the form the gateway's parser read it: http(s) only, or (`browser`) any a browser
 * hands to a site or an app, an app's own scheme included.
 */
function absoluteUrl(value: string, name: string, kind: 'http' | 'browser'): string {
  const what = kind === 'http' ? 'an absolute http(s) URL' : 'an absolute URL (http(s), or an app\'s own scheme)';
  text(value, name);
  // Characters no URL holds as they are (spaces of any kind, C0 and C1 controls, invisible characters: format
  // ones such as a soft hyphen or a zero-width space, and the other default-ignorable ones, such as a Hangul
  // filler or a variation selector) are refused with a message that says so: the URL parser would strip or
  // rewrite them silently, or percent-encode what no one reading the URL could see.
  if (HAS_UNSEEN.test(value)) {
    throw argumentError(name, `${name} must be ${what}, with no spaces, control or invisible characters (percent-encode them)`);
  }
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  // An absolute URL of a scheme the browser runs or reads locally is told so: "must be an absolute URL" would
  // send the caller looking for what is not absolute in `javascript:alert(1)`.
  if (kind === 'browser' && url !== undefined && isBrowserLocalScheme(url.protocol)) {
    throw argumentError(name, `${name} must not be a URL a browser runs or reads locally (${url.protocol}): send an http(s) URL or an app's own scheme`);
  }
  const allowed = kind === 'http' ? url?.protocol === 'http:' || url?.protocol === 'https:' : url !== undefined;
  if (!url || !allowed) throw argumentError(name, `${name} must be ${what}`);
  // The URL as the parser read it is what is sent: `https:example.com\cb` and the like reach the upstream in
  // the form that was judged, not in one another parser might read differently.
  if (url.href.length > MAX_FORM_VALUE_LENGTH) {
    throw argumentError(name, `${name} is ${url.href.length} characters once written as a URL (non-ASCII percent-encoded), more than the ${MAX_FORM_VALUE_LENGTH} accepted`);
  }
  return url.href;
}

/**
 * An email address, as far as the gateway checks one: text on both sides of one `@`, with no spaces,
 * control or invisible characters (format and other default-ignorable ones, as for URLs). A connect token also takes only the part from the `@` on (`@gmail.com`:
 * the API's own signing example sends it, and Context.IO's clients pick the user's provider so).
 */
export function email(value: string, name: string, allowDomainHint = false): string {
  text(value, name, MAX_EMAIL_LENGTH);
  // An address pasted with the line break or space around it is told so, as an id is: "must be an email address"
  // would send the caller looking for what is wrong in `ada@example.com`.
  if (HAS_UNSEEN.test(value)) {
    throw argumentError(name, `${name} must be an email address with no spaces, control or invisible characters (copied with one around it?)`);
  }
  const local = EMAIL_ADDRESS.exec(value)?.[1];
  if (local === undefined || (local === '' && !allowDomainHint)) {
    throw argumentError(name, `${name} must be an email address${allowDomainHint ? ', or the part from its @ on (@gmail.com)' : ''}`);
  }
  return value;
}

/**
 * A value sent as it is in a form (a name), checked under the input's own name: text a URL or form can carry
 * (no unpaired UTF-16 surrogate, which the URL parser would silently turn into U+FFFD), and no longer than
 * `maxLength` (at most what the client accepts).
 */
function text(value: string, name: string, maxLength = MAX_FORM_VALUE_LENGTH): string {
  if (HAS_HALF_PAIR.test(value)) throw argumentError(name, `${name} is not valid text: it contains an unpaired UTF-16 surrogate`);
  if (value.length > maxLength) {
    throw argumentError(name, `${name} is ${value.length} UTF-16 code units long, more than the ${maxLength} accepted`);
  }
  return value;
}

