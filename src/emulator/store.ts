import { randomBytes, randomInt } from 'node:crypto';
import { domainToASCII } from 'node:url';
import { asError } from '../support/failure-reason.ts';
import { MAX_EMAIL_LENGTH, MAX_NAME_LENGTH } from '../support/text-bounds.ts';
import { HAS_NAME_CONTROL, HAS_UNSEEN } from '../support/unseen-characters.ts';
import { percentEncode } from '../oauth/signature.ts';
import { accountRecordProblem, CONNECT_TOKEN_TTL_SECONDS, FIRST_SOURCE_ALIAS, isDomainHint, isPort, looksLikeEmail, readState, tokenRecordProblem, type PersistedState } from './persistence.ts';
import { removeStaleTemporaryFiles, writeAtomically, type FileVersion } from '../support/atomic-file.ts';
import { demoAccounts, demoTokens } from './seed.ts';
import type {
  UpstreamAccount,
  UpstreamConnectToken,
  UpstreamEmbeddedAccount,
  UpstreamSource,
} from '../upstream/types.ts';

/**
 * The emulator's in-memory state: accounts, their sources and connect tokens, with optional
 * persistence to one JSON file. Records are kept in an internal shape and rendered into the upstream
 * JSON types on the way out, so callers never hold references into the state.
 */

export type SeedName = 'demo' | 'none';

/** A source to add: any upstream source field, the label included, may be left for the store to choose. */
export type NewSource = Partial<Omit<UpstreamSource, 'resource_url'>>;

/** Expired tokens remembered for the connect page's message: 16-character ids, well under a megabyte in all. */
const MAX_REMEMBERED_EXPIRED = 10_000;

export interface NewAccount {
  email: string;
  first_name?: string;
  last_name?: string;
  username?: string;
  /** Unix seconds; defaults to the clock. */
  created?: number;
  /** Unix seconds when suspended; 0 (the default) for not suspended. The API has no call that sets it. */
  suspended?: number;
  /** Unix seconds when the password expired; 0 (the default) for not expired. Likewise. */
  password_expired?: number;
  nb_messages?: number;
  nb_files?: number;
  sources?: NewSource[];
}

export interface NewConnectToken {
  callback_url: string;
  email?: string;
  first_name?: string;
  last_name?: string;
  source_callback_url?: string;
  source_sync_all_folders?: boolean;
  source_sync_flags?: boolean;
  source_raw_file_list?: boolean;
  status_callback_url?: string;
  /** Unix seconds; defaults to the clock (set it in the past to make an already-expired token). */
  created?: number;
}

/** What the connect page submits: the mailbox the user connects. */
export interface ConnectInput {
  email?: string;
  first_name?: string;
  last_name?: string;
  server?: string;
  username?: string;
  port?: number;
  use_ssl?: boolean;
  /** Accepted and dropped: the emulator never connects to a mail server, so it never keeps passwords. */
  password?: string;
  /**
   * Store API only (the connect page never sets it): complete a top-level token by adding the source to
   * this existing account instead of creating one, so tests and benchmarks can have many used tokens over
   * few accounts, as an app whose users reconnect does. An unknown id throws {@link UnknownAccountError}; with an
   * account-level token, an id other than its own account's throws a TypeError.
   */
  existingAccountId?: string;
}

export interface ConnectResult {
  token: UpstreamConnectToken;
  account: UpstreamAccount;
  source: UpstreamSource;
  /** Where the browser goes next: callback_url with `contextio_token` appended. */
  redirectUrl: string;
  sourceCallbackUrl?: string;
}

export interface AccountFilter {
  email?: string;
  status?: string;
  status_ok?: boolean;
}

export type ConnectTokenState = 'usable' | 'used' | 'expired' | 'missing';

/** Why a connect token could not be used; `invalid` means the submitted form was, `field` the form's field in error. */
export class ConnectTokenError extends Error {
  constructor(
    readonly reason: 'missing' | 'used' | 'expired' | 'invalid',
    message: string,
    readonly field?: 'email' | 'port' | 'server' | 'username' | 'first_name' | 'last_name',
  ) {
    super(message);
    this.name = 'ConnectTokenError';
  }
}

/**
 * Thrown by the store's own API (to tests, benchmarks and the soak run) for an unknown account id. The API
 * routes never meet it: they look the account up first and answer the 404 themselves (api.ts, `requireAccount`).
 */
export class UnknownAccountError extends Error {
  constructor(readonly accountId: string) {
    super(`account ${accountId} is invalid`);
    this.name = 'UnknownAccountError';
  }
}

export interface SourceRecord {
  label: string;
  email: string;
  username: string;
  server: string;
  port: number;
  use_ssl: boolean;
  type: string;
  authentication_type: string;
  status: string;
  status_message: string | null;
  sync_period: string;
}

export interface AccountRecord {
  id: string;
  username: string;
  created: number;
  suspended: number;
  email_addresses: string[];
  first_name: string;
  last_name: string;
  password_expired: number;
  nb_messages: number;
  nb_files: number;
  sources: SourceRecord[];
}

export interface TokenRecord {
  token: string;
  /** The account an account-level token adds a source to; `null` for a top-level token. */
  owner: string | null;
  email?: string;
  created: number;
  /** Unix seconds, 0 while unused. */
  used: number;
  callback_url: string;
  first_name?: string;
  last_name?: string;
  source_callback_url?: string;
  status_callback_url?: string;
  source_sync_all_folders?: boolean;
  source_sync_flags?: boolean;
  source_raw_file_list?: boolean;
  /** The account the token created or added a source to, once used. */
  account_id?: string;
  /** The embedded account as it was when used, shown if that account is later deleted. */
  account_snapshot?: UpstreamEmbeddedAccount;
}

export interface StoreOptions {
  now?: () => number;
  dataFile?: string;
  seed?: SeedName;
  /** Called when a save fails; the state stays in memory and the next write retries. */
  onSaveError?: (error: Error) => void;
}

/** 24 lowercase hex characters, like the upstream's account ids. */
function newAccountId(): string {
  return randomBytes(12).toString('hex');
}

const TOKEN_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

/** 16 random lowercase alphanumerics, like the upstream's connect tokens. */
function newConnectToken(): string {
  let out = '';
  for (let i = 0; i < 16; i++) out += TOKEN_ALPHABET[randomInt(TOKEN_ALPHABET.length)];
  return out;
}

/**
 * A mail server's name as given by a user or a caller, as an IMAP client connects to it: trimmed, and an
 * internationalized one (`imap.exämple.com`, the default the connect page suggests for `zoë@exämple.com`) in its
 * ASCII form (`imap.xn--exmple-cua.com`). `undefined` when it is no host name (a space, a slash, a port after a
 * colon, or dots and hyphens where a host name has none: `.`, `a..b`, `-a.b`), which would also be no name to label the
 * source by (`username::server`). The connect page and POST /accounts's first source take the same names.
 */
export function mailServerName(given: string): string | undefined {
  const trimmed = given.trim();
  const name = /[\u0080-\uffff]/.test(trimmed) ? domainToASCII(trimmed) : trimmed;
  return HOST_NAME.test(name) && name.replace(/\.$/, '').length <= 253 ? name : undefined;
}

/** A host name's shape (RFC 1123): labels of 1 to 63 letters, digits and inner hyphens, a final dot allowed. */
const HOST_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

/**
 * Refuses, as the form's mistake on `field`, a value typed on the connect page longer than `max` (UTF-16 code
 * units), the gateway's bound on what a caller sends (text-bounds.ts): whoever holds a link reaches the page, and
 * what it keeps is listed back in every account page and, in the used token's copy of the account, in the token
 * list, unpaged, whose used tokens never expire. A megabyte of names a flow put that list past the 32 MiB the
 * gateway reads in 34 flows.
 */
function refuseLongerThan(value: string, max: number, field: NonNullable<ConnectTokenError['field']>, what: string): void {
  if (value.length > max) throw new ConnectTokenError('invalid', `The ${what} is at most ${max} characters long.`, field);
}

/** Refuses, as the form's mistake on `field`, a name typed on the connect page that the gateway would refuse in a name. */
function refuseUnlikeName(value: string, field: NonNullable<ConnectTokenError['field']>, what: string): void {
  refuseLongerThan(value, MAX_NAME_LENGTH, field, what);
  if (HAS_NAME_CONTROL.test(value)) {
    throw new ConnectTokenError('invalid', `The ${what} must not contain control characters (line breaks, tabs, directional overrides …).`, field);
  }
}

/** A query string's `name=value` pair names `contextio_token`, however its name is encoded. */
function isTokenPair(pair: string): boolean {
  const name = pair.split('=', 1)[0]!.replaceAll('+', ' ');
  try {
    return decodeURIComponent(name) === 'contextio_token';
  } catch {
    return false; // A malformed escape: not a name URLSearchParams would read as the token either.
  }
}

/**
 * The part of a callback URL before its fragment without any `contextio_token` it already carries (an app
 * reusing the URL it was last called back on): the app reads one, and URLSearchParams.get takes the first.
 * The other pairs stay as written.
 */
function withoutStaleToken(base: string): string {
  const question = base.indexOf('?');
  if (question < 0) return base;
  const pairs = base.slice(question + 1).split('&');
  const kept = pairs.filter((pair) => !isTokenPair(pair));
  if (kept.length === pairs.length) return base;
  return `${base.slice(0, question + 1)}${kept.join('&')}`;
}

/** Appends `contextio_token` to a callback URL, before any fragment, in place of any it already has. */
function callbackWithToken(given: string, token: string): string {
  // As the URL parser writes it (non-ASCII percent-encoded, tabs and line breaks dropped): the result is a
  // Location header, which refuses anything else, sent once the token is already used. Whatever stored it
  // (the API, the store's own hook, an older data file).
  let callbackUrl = given;
  try {
    callbackUrl = new URL(given).href;
  } catch {
    // Not a URL at all: no record holds one (the API, the store's own hook and the data file's load refuse it).
  }
  const hash = callbackUrl.indexOf('#');
  const base = withoutStaleToken(hash < 0 ? callbackUrl : callbackUrl.slice(0, hash));
  const fragment = hash < 0 ? '' : callbackUrl.slice(hash);
  const sep = base.includes('?') ? (base.endsWith('?') || base.endsWith('&') ? '' : '&') : '?';
  return `${base}${sep}contextio_token=${encodeURIComponent(token)}${fragment}`;
}

export class EmulatorStore {
  /** Base URL ending in `/2.0`, used for `resource_url`; the server sets it once it listens. */
  baseUrl = 'http://127.0.0.1/2.0';
  /** Tokens purged as expired, most recent last (see purgeExpired). */
  private readonly recentlyExpired = new Set<string>();

  private accounts = new Map<string, AccountRecord>();
  private tokens = new Map<string, TokenRecord>();
  private readonly now: () => number;
  private readonly dataFile: string | undefined;
  private readonly onSaveError: (error: Error) => void;
  /** The saves, chained; each resolves to its error when it failed. */
  private saveChain: Promise<Error | undefined> = Promise.resolve(undefined);
  private saveQueued = false;
  /** Changes made so far, and how many of them the data file holds (as of the last save that succeeded). */
  private changes = 0;
  private changesSaved = 0;
  /** The loaded data file's fields (its format, version and any others), in its order; its accounts and tokens emptied. */
  private fileFields: Record<string, unknown> = {};
  /** The data file as this store last read (at its start) or wrote it: a file changed since is another process's, not overwritten. */
  private savedVersion: FileVersion | undefined;

  constructor(options: StoreOptions = {}) {
    this.now = options.now ?? Date.now;
    this.dataFile = options.dataFile;
    this.onSaveError =
      options.onSaveError ??
      // The file named: the system's reason (`ENOSPC: no space left on device, write`) names none.
      ((error) => process.stderr.write(`Context.IO emulator: could not save state to ${this.dataFile}: ${error.message}\n`));
  }

  /**
   * Creates a store: from `dataFile` when it exists (a corrupt file is an error), else seeded.
   * The data file is written at once, so a fresh start leaves a file behind and one that cannot be written
   * is an error now rather than lost changes later.
   */
  static async open(options: StoreOptions = {}): Promise<EmulatorStore> {
    const store = new EmulatorStore(options);
    const read = options.dataFile ? await readState(options.dataFile) : undefined;
    if (read) {
      store.load(read.state);
      store.savedVersion = read.version;
    } else {
      store.seed(options.seed ?? 'demo');
    }
    if (options.dataFile) {
      await removeStaleTemporaryFiles(options.dataFile);
      // Written once now, loaded or seeded, and a failure stops the start: a data file that cannot be
      // written would otherwise leave the state in memory only, with a line on stderr per change.
      await store.writeTo(options.dataFile).catch((error: Error) => {
        throw new Error(`Context.IO emulator: cannot write data file ${options.dataFile}: ${error.message}`);
      });
    }
    return store;
  }

  private nowSeconds(): number {
    return Math.floor(this.now() / 1000);
  }

  // ---- accounts -------------------------------------------------------------------------------

  /** Creates an account (with optional sources) and returns it as the API would. */
  createAccount(input: NewAccount): UpstreamAccount {
    const email = input.email.trim();
    if (!looksLikeEmail(email)) throw new TypeError(`email ${JSON.stringify(input.email)} is invalid`);
    let id = newAccountId();
    while (this.accounts.has(id)) id = newAccountId();
    const record: AccountRecord = {
      id,
      username: input.username ?? `${email.replace('@', '.')}_${randomBytes(8).toString('hex')}`,
      created: input.created ?? this.nowSeconds(),
      suspended: input.suspended ?? 0,
      email_addresses: [email],
      first_name: input.first_name ?? '',
      last_name: input.last_name ?? '',
      password_expired: input.password_expired ?? 0,
      nb_messages: input.nb_messages ?? 0,
      nb_files: input.nb_files ?? 0,
      sources: [],
    };
    for (const source of input.sources ?? []) addSourceRecord(record, source);
    this.keepAccount(record, 'account not created');
    this.scheduleSave();
    return this.renderAccount(record);
  }

  /** The account, or `undefined` when unknown. */
  getAccount(id: string): UpstreamAccount | undefined {
    const record = this.accounts.get(id);
    return record && this.renderAccount(record);
  }

  /**
   * All accounts in creation order, optionally filtered like `GET /accounts`. As Context.IO documented it, the
   * source filters (`status`, `status_ok`) keep the accounts with at least one matching source, and each of
   * those is listed with its matching sources only.
   */
  listAccounts(filter: AccountFilter = {}): UpstreamAccount[] {
    const email = filter.email?.toLowerCase();
    const bySource = filter.status !== undefined || filter.status_ok !== undefined;
    const wanted = sourceFilter(filter);
    return [...this.accounts.values()]
      .filter((a) => email === undefined || a.email_addresses.some((e) => e.toLowerCase() === email))
      .filter((a) => !bySource || a.sources.some(wanted))
      .map((a) => this.renderAccount(a, wanted));
  }

  /** Changes the names; returns false for an unknown account. */
  updateAccount(id: string, patch: { first_name?: string; last_name?: string }): boolean {
    const record = this.accounts.get(id);
    if (!record) return false;
    this.keepAccount({ ...record, ...stripUndefined(patch) }, 'account not updated');
    this.scheduleSave();
    return true;
  }

  /** Deletes the account and its account-level tokens; returns false for an unknown account. */
  deleteAccount(id: string): boolean {
    const record = this.accounts.get(id);
    if (!record) return false;
    this.accounts.delete(id);
    // A used top-level token goes on embedding the account it created, as it last was.
    const last = embed(this.renderAccount(record));
    for (const [key, token] of this.tokens) {
      if (token.owner === id) this.tokens.delete(key);
      else if (token.account_id === id) token.account_snapshot = structuredClone(last);
    }
    this.scheduleSave();
    return true;
  }

  // ---- sources --------------------------------------------------------------------------------

  /** Adds a source to an account; missing fields get defaults derived from the email. */
  addSource(accountId: string, source: NewSource): UpstreamSource {
    const record = this.accounts.get(accountId);
    if (!record) throw new UnknownAccountError(accountId);
    const [account, added] = this.keepAccountWithSource(record, source);
    this.scheduleSave();
    return this.renderSource(account, added);
  }

  /** The account's sources, optionally filtered by status; `undefined` for an unknown account. */
  listSources(accountId: string, filter: { status?: string; status_ok?: boolean } = {}): UpstreamSource[] | undefined {
    const record = this.accounts.get(accountId);
    if (!record) return undefined;
    return record.sources.filter(sourceFilter(filter)).map((s) => this.renderSource(record, s));
  }

  /** One source by label (`0` is the first source); `undefined` when the account or label is unknown. */
  getSource(accountId: string, label: string): UpstreamSource | undefined {
    const record = this.accounts.get(accountId);
    const source = record && findSource(record, label);
    return record && source && this.renderSource(record, source);
  }

  /** Keeps `account` with a source added from `input`; the record kept and the source. */
  private keepAccountWithSource(account: AccountRecord, input: NewSource): [AccountRecord, SourceRecord] {
    // Added to a copy, kept only once checked: a source refused changes nothing.
    const next = { ...account, email_addresses: [...account.email_addresses], sources: [...account.sources] };
    const source = addSourceRecord(next, input);
    this.keepAccount(next, 'source not added');
    return [next, source];
  }

  /**
   * Keeps an account record, new or changed, once checked as the data file's load checks it (persistence.ts): what
   * the store holds it saves, and a record the file refuses would stop the next start. Refused, nothing changes.
   */
  private keepAccount(record: AccountRecord, refusal: string): void {
    const problem = accountRecordProblem(record);
    if (problem) throw new TypeError(`${refusal}: ${problem}`);
    this.accounts.set(record.id, record);
  }

  /** The same for a connect token. */
  private keepToken(record: TokenRecord, refusal: string): void {
    const problem = tokenRecordProblem(record);
    if (problem) throw new TypeError(`${refusal}: ${problem}`);
    this.tokens.set(record.token, record);
  }

  // ---- connect tokens -------------------------------------------------------------------------

  /** Creates a connect token: top-level when `accountId` is null, else for that account. */
  createConnectToken(accountId: string | null, input: NewConnectToken): UpstreamConnectToken {
    if (accountId !== null && !this.accounts.has(accountId)) throw new UnknownAccountError(accountId);
    let token = newConnectToken();
    while (this.tokens.has(token)) token = newConnectToken();
    const record: TokenRecord = {
      ...stripUndefined({
        email: input.email,
        first_name: input.first_name,
        last_name: input.last_name,
        source_callback_url: input.source_callback_url,
        status_callback_url: input.status_callback_url,
        source_sync_all_folders: input.source_sync_all_folders,
        source_sync_flags: input.source_sync_flags,
        source_raw_file_list: input.source_raw_file_list,
      }),
      token,
      owner: accountId,
      created: input.created ?? this.nowSeconds(),
      used: 0,
      callback_url: input.callback_url,
    };
    this.keepToken(record, 'connect token not created');
    this.scheduleSave();
    return this.renderToken(record);
  }

  /**
   * A token by id: with `accountId` an account's id, only that account's tokens are found; with `null`, only
   * top-level ones (the API's two families, each at its own path); without it, any token (the connect page's
   * view). Expired unused tokens are purged first.
   */
  getConnectToken(token: string, accountId?: string | null): UpstreamConnectToken | undefined {
    this.purgeExpired();
    const record = this.tokens.get(token);
    if (!record || (accountId !== undefined && record.owner !== accountId)) return undefined;
    return this.renderToken(record);
  }

  /** Top-level tokens (`null`) or one account's account-level tokens, in creation order. */
  listConnectTokens(accountId: string | null = null): UpstreamConnectToken[] {
    this.purgeExpired();
    return [...this.tokens.values()].filter((t) => t.owner === accountId).map((t) => this.renderToken(t));
  }

  /** Deletes a token (scoped like {@link getConnectToken}); returns false when not found. */
  deleteConnectToken(token: string, accountId?: string | null): boolean {
    this.purgeExpired();
    const record = this.tokens.get(token);
    if (!record || (accountId !== undefined && record.owner !== accountId)) return false;
    this.tokens.delete(token);
    this.scheduleSave();
    return true;
  }

  /** Whether the connect page can use this token; an expired one is purged, and still reported as expired after. */
  connectTokenState(token: string): ConnectTokenState {
    const record = this.tokens.get(token);
    if (!record) return this.recentlyExpired.has(token) ? 'expired' : 'missing';
    if (record.used) return 'used';
    if (this.isExpired(record)) {
      this.purgeExpired();
      return 'expired';
    }
    return 'usable';
  }

  /** The token with the fields the connect page needs (including the source callback). */
  connectTokenDetails(token: string): (UpstreamConnectToken & { owner: string | null }) | undefined {
    const record = this.tokens.get(token);
    return record && { ...this.renderToken(record), owner: record.owner };
  }

  /**
   * Completes the connect flow, as the connect page does: a top-level token creates an account,
   * an account-level token adds a source to its account; the new source is OK and the token is used.
   */
  useConnectToken(token: string, input: ConnectInput): ConnectResult {
    const state = this.connectTokenState(token);
    if (state === 'missing') throw new ConnectTokenError('missing', `connect token ${token} is invalid`);
    if (state === 'used') throw new ConnectTokenError('used', `connect token ${token} has already been used`);
    if (state === 'expired') throw new ConnectTokenError('expired', `connect token ${token} has expired`);
    const record = this.tokens.get(token)!;
    // An account-level token adds its source to its own account: another one named beside it is a caller's mistake,
    // said rather than ignored.
    if (record.owner !== null && input.existingAccountId !== undefined && input.existingAccountId !== record.owner) {
      throw new TypeError(`connect token ${token} is an account-level token of account ${record.owner}, not of ${input.existingAccountId}`);
    }

    // A domain hint (`@gmail.com`) is no address: the user's own is what the form sent.
    const tokenEmail = record.email && !isDomainHint(record.email) ? record.email : undefined;
    const email = (tokenEmail ?? input.email ?? '').trim();
    // One typed is held to what the gateway takes in an address: no space, control or invisible character.
    if (!looksLikeEmail(email) || (tokenEmail === undefined && HAS_UNSEEN.test(email))) {
      throw new ConnectTokenError('invalid', 'Enter a valid email address.', 'email');
    }
    if (tokenEmail === undefined) refuseLongerThan(email, MAX_EMAIL_LENGTH, 'email', 'email address');
    const [local = '', domain = ''] = email.split('@');
    const server = mailServerName(input.server?.trim() || `imap.${domain}`);
    const username = input.username?.trim() || local;
    refuseUnlikeName(username, 'username', 'username');
    const port = input.port ?? 993;
    if (!isPort(port)) {
      throw new ConnectTokenError('invalid', 'The port must be a number from 1 to 65535.', 'port');
    }
    if (server === undefined) throw new ConnectTokenError('invalid', 'Enter a valid IMAP server name.', 'server');
    const sourceInput: NewSource = { email, username, server, port, use_ssl: input.use_ssl ?? true, status: 'OK' };
    const owner = record.owner ?? input.existingAccountId ?? null;
    // Only a new account takes the names typed (the page asks for them only then).
    const typedFirstName = owner === null ? input.first_name?.trim() : undefined;
    const typedLastName = owner === null ? input.last_name?.trim() : undefined;
    refuseUnlikeName(typedFirstName ?? '', 'first_name', 'first name');
    refuseUnlikeName(typedLastName ?? '', 'last_name', 'last name');
    const firstName = typedFirstName || record.first_name;
    const lastName = typedLastName || record.last_name;

    // The one field of the used token that is not the checked account's: checked before the account changes, so that a
    // refusal (only a clock before 1970 or past 9999 makes one) leaves the token usable and the account as it was.
    const used = this.nowSeconds();
    const usedProblem = tokenRecordProblem({ ...record, used });
    if (usedProblem) throw new TypeError(`connect token not used: ${usedProblem}`);

    let account: AccountRecord;
    if (owner === null) {
      const created = this.createAccount({
        email,
        first_name: firstName ?? '',
        last_name: lastName ?? '',
        sources: [sourceInput],
      });
      account = this.accounts.get(created.id)!;
    } else {
      const existing = this.accounts.get(owner);
      // Only an existingAccountId can name no account: deleteAccount takes an account's own tokens with it, and a data
      // file with a token of no account is refused. The token is not at fault, and stays usable.
      if (!existing) throw new UnknownAccountError(owner);
      [account] = this.keepAccountWithSource(existing, sourceInput);
    }
    const source = account.sources[account.sources.length - 1]!;

    record.used = used;
    record.account_id = account.id;
    record.account_snapshot = embed(this.renderAccount(account));
    this.scheduleSave();

    return {
      token: this.renderToken(record),
      account: this.renderAccount(account),
      source: this.renderSource(account, source),
      redirectUrl: callbackWithToken(record.callback_url, token),
      ...(record.source_callback_url ? { sourceCallbackUrl: record.source_callback_url } : {}),
    };
  }

  private isExpired(record: TokenRecord): boolean {
    return record.used === 0 && this.nowSeconds() >= record.created + CONNECT_TOKEN_TTL_SECONDS;
  }

  /** Drops expired unused tokens, as the upstream purges them. */
  purgeExpired(): void {
    let purged = false;
    for (const [key, record] of this.tokens) {
      if (this.isExpired(record)) {
        this.tokens.delete(key);
        this.recentlyExpired.add(key);
        purged = true;
      }
    }
    // Remembered a while (not across restarts), so that a link opened after its token was purged still says
    // "expired" rather than "unknown"; the oldest are forgotten first.
    for (const key of this.recentlyExpired) {
      if (this.recentlyExpired.size <= MAX_REMEMBERED_EXPIRED) break;
      this.recentlyExpired.delete(key);
    }
    if (purged) this.scheduleSave();
  }

  // ---- whole state ----------------------------------------------------------------------------

  /** Empties the store, or reseeds it with `seed`. */
  reset(seed: SeedName = 'none'): void {
    this.accounts.clear();
    this.tokens.clear();
    this.recentlyExpired.clear();
    this.seed(seed);
    this.scheduleSave();
  }

  /**
   * Resolves once every write scheduled so far is on disk, or the save carrying them failed: then to its
   * error (already reported through `onSaveError`). Never rejects.
   */
  flush(): Promise<Error | undefined> {
    return this.saveChain;
  }

  /**
   * Saves (when persisting) and waits for it; rejects when that last save failed with changes the file does not
   * hold: they are lost. With none, a save that fails loses nothing (reported all the same): the file holds this
   * state already, or an edit made since, to be loaded by a restart.
   */
  async close(): Promise<void> {
    this.queueSave();
    const failure = await this.flush();
    if (failure && this.changesSaved < this.changes) throw new Error(`could not save state on closing (the changes since the last save are lost): ${failure.message}`);
  }

  /** After a change: saves it. */
  private scheduleSave(): void {
    this.changes += 1;
    this.queueSave();
  }

  private queueSave(): void {
    const file = this.dataFile;
    if (!file || this.saveQueued) return;
    // Writes are chained so they never interleave; mutations made before a queued write starts are
    // coalesced into it because the snapshot is taken when the write begins.
    this.saveQueued = true;
    this.saveChain = this.saveChain.then(async () => {
      this.saveQueued = false;
      const through = this.changes;
      try {
        await this.writeTo(file);
        this.changesSaved = through;
        return undefined;
      } catch (thrown) {
        const error = asError(thrown);
        this.onSaveError(error);
        return error;
      }
    });
  }

  /** The whole state, written to `file` atomically. */
  private async writeTo(file: string): Promise<void> {
    this.savedVersion = await writeAtomically(file, JSON.stringify(this.snapshot(), null, 2), this.savedVersion);
  }

  private snapshot(): PersistedState {
    return {
      // First, so that every field stays where the file had it (the four below replace theirs in place).
      ...this.fileFields,
      format: 'contextio-emulator',
      version: 1,
      accounts: [...this.accounts.values()],
      tokens: [...this.tokens.values()],
    };
  }

  private load(state: PersistedState): void {
    // The file's fields the format does not have, kept as the records' own are: written back by every save. Its
    // records are the store's (below): here only their place among the fields is kept.
    this.fileFields = { ...state, accounts: [], tokens: [] };
    this.accounts = new Map(state.accounts.map((a) => [a.id, structuredClone(a)]));
    this.tokens = new Map(state.tokens.map((t) => [t.token, structuredClone(t)]));
  }

  private seed(seed: SeedName): void {
    if (seed === 'none') return;
    const now = this.nowSeconds();
    for (const { id, record, sources } of demoAccounts(now)) {
      const account: AccountRecord = { id, suspended: 0, password_expired: 0, sources: [], ...record };
      for (const source of sources) addSourceRecord(account, source);
      this.keepAccount(account, 'demo account not seeded');
    }
    for (const token of demoTokens(now, (id) => embed(this.renderAccount(this.accounts.get(id)!)))) this.keepToken(token, 'demo connect token not seeded');
  }

  // ---- rendering ------------------------------------------------------------------------------

  private accountUrl(id: string): string {
    return `${this.baseUrl}/accounts/${percentEncode(id)}`;
  }

  // The renderers below write each field out instead of spreading a record: a token page renders 100 tokens,
  // each with its account and sources, and on Node 20 an object spread of a record read from the data file
  // costs several times the copy written out (a page of 100 rendered in ~840 µs with spreads).
  private renderSource(account: AccountRecord, s: SourceRecord): UpstreamSource {
    return {
      label: s.label,
      email: s.email,
      username: s.username,
      server: s.server,
      port: s.port,
      use_ssl: s.use_ssl,
      type: s.type,
      authentication_type: s.authentication_type,
      status: s.status,
      status_message: s.status_message,
      sync_period: s.sync_period,
      resource_url: `${this.accountUrl(account.id)}/sources/${percentEncode(s.label)}`,
    };
  }

  /** The account as the API shows it, with only the sources `listed` keeps (all by default). */
  private renderAccount(a: AccountRecord, listed: (source: SourceRecord) => boolean = () => true): UpstreamAccount {
    return {
      id: a.id,
      username: a.username,
      created: a.created,
      suspended: a.suspended,
      email_addresses: [...a.email_addresses],
      first_name: a.first_name,
      last_name: a.last_name,
      password_expired: a.password_expired,
      sources: a.sources.filter(listed).map((s) => this.renderSource(a, s)),
      resource_url: this.accountUrl(a.id),
      nb_messages: a.nb_messages,
      nb_files: a.nb_files,
    };
  }

  private renderToken(t: TokenRecord): UpstreamConnectToken {
    let account: UpstreamEmbeddedAccount | null = null;
    if (t.used !== 0) {
      const live = t.account_id === undefined ? undefined : this.accounts.get(t.account_id);
      account = live ? embed(this.renderAccount(live)) : (structuredClone(t.account_snapshot) ?? null);
    }
    const token: UpstreamConnectToken = {
      token: t.token,
      created: t.created,
      used: t.used,
      expires: t.used !== 0 ? false : t.created + CONNECT_TOKEN_TTL_SECONDS,
      callback_url: t.callback_url,
      account,
    };
    // Only the strings given at creation: the wire form (the API's `wireToken`) fills in the others.
    if (t.email !== undefined) token.email = t.email;
    if (t.first_name !== undefined) token.first_name = t.first_name;
    if (t.last_name !== undefined) token.last_name = t.last_name;
    return token;
  }
}

/**
 * Adds a source made from `input` to `account` (missing fields derived from its address), and its address to the
 * account's when new. On a record not yet kept: the store checks the result before keeping it.
 */
function addSourceRecord(account: AccountRecord, input: NewSource): SourceRecord {
  const email = input.email ?? account.email_addresses[0] ?? '';
  const [local = '', domain = 'example.com'] = email.split('@');
  const username = input.username ?? local;
  const server = input.server ?? `imap.${domain}`;
  let label = input.label ?? `${username}::${server}`;
  // Labels identify sources inside an account, so a second connection of the same mailbox gets a suffix.
  for (let n = 2; account.sources.some((s) => s.label === label); n++) label = `${input.label ?? `${username}::${server}`}-${n}`;
  const source: SourceRecord = {
    label,
    email,
    username,
    server,
    port: input.port ?? 993,
    use_ssl: input.use_ssl ?? true,
    type: input.type ?? 'imap',
    authentication_type: input.authentication_type ?? 'password',
    status: input.status ?? 'OK',
    status_message: input.status_message ?? null,
    sync_period: input.sync_period ?? '1d',
  };
  account.sources.push(source);
  if (email && !account.email_addresses.some((e) => e.toLowerCase() === email.toLowerCase())) {
    account.email_addresses.push(email);
  }
  return source;
}

function findSource(account: AccountRecord, label: string): SourceRecord | undefined {
  if (label === FIRST_SOURCE_ALIAS) return account.sources[0];
  return account.sources.find((s) => s.label === label);
}

function embed(a: UpstreamAccount): UpstreamEmbeddedAccount {
  return {
    id: a.id,
    created: a.created,
    suspended: a.suspended,
    email_addresses: a.email_addresses,
    first_name: a.first_name ?? '',
    last_name: a.last_name ?? '',
    sources: a.sources,
  };
}

function stripUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

/** The sources a `status` / `status_ok` filter keeps: both, when both are given. */
function sourceFilter(filter: { status?: string; status_ok?: boolean }): (source: { status: string }) => boolean {
  return (s) => (filter.status === undefined || s.status === filter.status) && (filter.status_ok === undefined || (s.status === 'OK') === filter.status_ok);
}
