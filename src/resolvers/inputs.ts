import { ErrorCode, gatewayError } from '../errors.ts';
import type { CreateConnectTokenInput } from '../generated/graphql.ts';
import type { UpstreamConnectTokenForm } from '../upstream/types.ts';

/** Mutation inputs checked and turned into the upstream's forms, so that a bad input costs no request. */

/** The upstream's form for a new connect token, checked first so a bad input costs no request. */
export function connectTokenForm(input: CreateConnectTokenInput): UpstreamConnectTokenForm {
  return {
    callback_url: httpUrl(input.callbackUrl, 'input.callbackUrl'),
    email: input.email == null ? undefined : email(input.email, 'input.email'),
    first_name: input.firstName,
    last_name: input.lastName,
    source_callback_url: input.sourceCallbackUrl == null ? undefined : httpUrl(input.sourceCallbackUrl, 'input.sourceCallbackUrl'),
    source_sync_all_folders: input.sourceSyncAllFolders,
    source_sync_flags: input.sourceSyncFlags,
    source_raw_file_list: input.sourceRawFileList,
  };
}

/** An absolute http(s) URL, sent in the form the gateway's parser read it. */
function httpUrl(value: string, name: string): string {
  // Characters no URL holds as they are (spaces of any kind, C0 and C1 controls, invisible format characters
  // such as a soft hyphen or a zero-width space) are refused with a message that says so: the URL parser
  // would strip or rewrite them silently.
  // eslint-disable-next-line no-control-regex
  if (/[\s\u0000-\u001f\u007f-\u009f\p{Cf}]/u.test(value)) {
    throw gatewayError(ErrorCode.BAD_USER_INPUT, `${name} must be an absolute http(s) URL, with no spaces, control or invisible characters (percent-encode them)`);
  }
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw gatewayError(ErrorCode.BAD_USER_INPUT, `${name} must be an absolute http(s) URL`);
  }
  // The URL as the parser read it is what is sent: `https:example.com\cb` and the like reach the upstream in
  // the form that was judged, not in one another parser might read differently.
  return url.href;
}

/** An email address, as far as the gateway checks one: text on both sides of one `@`. */
export function email(value: string, name: string): string {
  if (!/^[^\s@]+@[^\s@]+$/.test(value)) throw gatewayError(ErrorCode.BAD_USER_INPUT, `${name} must be an email address`);
  return value;
}
