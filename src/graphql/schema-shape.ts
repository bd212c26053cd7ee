/**
 * Facts about the schema's fields that the resolvers and the operation cost estimate (src/limits/) must
 * agree on, kept once so that the two cannot drift apart.
 */

/** The largest `first` of a connection: the upstream serves at most 100 items a page. */
export const MAX_PAGE_SIZE = 100;

/**
 * `first` when a connection is asked for without one: the schema's own default (`first: Int = 20`), which
 * test/resilience/cost-weights.test.ts checks against this; also what an explicit `first: null` gets.
 */
export const DEFAULT_PAGE_SIZE = 20;

/**
 * The Account fields its id alone answers (its connect tokens are fetched by the account's id): an account known
 * only by its id (a write just named it, a used token sent only its id) is loaded for any other field, and not
 * for these.
 */
export const ACCOUNT_FIELDS_ANSWERED_BY_ID: ReadonlySet<string> = new Set(['id', 'connectTokens', 'connectToken']);

/**
 * The Account fields a used connect token's embedded account lacks: selecting any of them under
 * `ConnectToken.account` loads the full account, one request for all of them.
 */
export const FULL_ONLY_ACCOUNT_FIELDS: ReadonlySet<string> = new Set(['username', 'passwordExpiredAt', 'messageCount', 'fileCount']);
