/**
 * The Context.IO 2.0 JSON shapes, as the upstream sends them (snake_case, Unix seconds).
 * These are the codegen mappers' parent types: resolvers receive them and translate field by field.
 * The emulator produces exactly these shapes too.
 */

/** The source statuses the reference lists; the upstream may send others, kept as plain strings. */
export const SOURCE_STATUSES = [
  'OK',
  'INVALID_CREDENTIALS',
  'CONNECTION_IMPOSSIBLE',
  'NO_ACCESS_TO_ALL_MAIL',
  'TEMP_DISABLED',
  'DISABLED',
] as const;
type UpstreamSourceStatus = (typeof SOURCE_STATUSES)[number];

export interface UpstreamSource {
  label: string;
  email?: string;
  username?: string;
  server?: string;
  port?: number;
  use_ssl?: boolean;
  type?: string;
  authentication_type?: string;
  status?: UpstreamSourceStatus | (string & {});
  status_message?: string | null;
  sync_period?: string;
  resource_url?: string;
}

/** The account as embedded in a used connect token: a subset of the full account. */
export interface UpstreamEmbeddedAccount {
  id: string;
  created: number;
  suspended: number | false;
  email_addresses: string[];
  first_name?: string;
  last_name?: string;
  sources: UpstreamSource[];
}

export interface UpstreamAccount extends UpstreamEmbeddedAccount {
  username?: string;
  password_expired: number | false;
  resource_url?: string;
  /** Older documents only: may be missing. */
  nb_messages?: number;
  nb_files?: number;
}

export interface UpstreamConnectToken {
  token: string;
  email?: string;
  created: number;
  used: number | false;
  /** An integer while unused, `false` once used. */
  expires: number | false;
  callback_url: string;
  first_name?: string;
  last_name?: string;
  /**
   * After parsing: the embedded account once used, `null` while unused. On the wire an unused token's
   * account is `{}`, `[]` or a bare id string; the client normalizes those to `null`. A used token's account
   * sent as a bare id string becomes an {@link UpstreamAccountReference}.
   */
  account: UpstreamEmbeddedAccount | UpstreamAccountReference | null;
}

/** A used token's account when the server sent only its id: every field but the id needs the account loaded. */
export interface UpstreamAccountReference {
  id: string;
  reference: true;
}

export interface UpstreamCreateConnectTokenResult {
  success: boolean;
  token: string;
  resource_url: string;
  browser_redirect_url: string;
}

export interface UpstreamCreateAccountResult {
  success: boolean;
  id: string;
  resource_url: string;
}

export interface UpstreamSuccess {
  success: boolean;
}

export interface UpstreamErrorBody {
  type: 'error';
  value: string;
  code?: number;
}

// What the client sends: the query and forms of the calls that take parameters, named as the upstream
// names them. Unset (null or undefined) values are left out; flags are sent as 0/1.

type Unset = null | undefined;

/** The query of `GET /accounts`. */
export type UpstreamAccountListQuery = {
  readonly limit: number;
  readonly offset: number;
  readonly email?: string | Unset;
  readonly status?: string | Unset;
  readonly status_ok?: boolean | Unset;
};

/** The form of `POST /accounts/{id}`: the account holder's name, what an account's update may change. */
export type UpstreamAccountUpdateForm = {
  readonly first_name?: string | Unset;
  readonly last_name?: string | Unset;
};

/** The form of `POST /accounts`. */
export type UpstreamNewAccountForm = UpstreamAccountUpdateForm & { readonly email: string };

/** The form of `POST /connect_tokens` and `POST /accounts/{id}/connect_tokens`. */
export type UpstreamConnectTokenForm = UpstreamAccountUpdateForm & {
  readonly callback_url: string;
  readonly email?: string | Unset;
  readonly source_callback_url?: string | Unset;
  readonly source_sync_all_folders?: boolean | Unset;
  readonly source_sync_flags?: boolean | Unset;
  readonly source_raw_file_list?: boolean | Unset;
};
