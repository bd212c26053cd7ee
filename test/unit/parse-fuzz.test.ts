import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  getNamedType,
  isEnumType,
  isListType,
  isNonNullType,
  isObjectType,
  isScalarType,
  type GraphQLOutputType,
  type GraphQLResolveInfo,
} from 'graphql';
import { resolvers } from '../../src/resolvers/index.ts';
import { DateTime } from '../../src/resolvers/scalars.ts';
import { buildSchema } from '../../src/graphql/schema.ts';
import {
  listOf,
  NotCreated,
  parseAccount,
  parseConnectToken,
  parseCreateAccount,
  parseCreateConnectToken,
  parseSuccess,
  ShapeError,
} from '../../src/upstream/parse.ts';
import { SOURCE_STATUSES } from '../../src/upstream/types.ts';
import { Random } from '../helpers/random.ts';
import {
  ACCOUNT_ID,
  embeddedAccountShape,
  mutate,
  raw,
  toText,
  validAccount,
  validCreateAccount,
  validCreateConnectToken,
  validEmbeddedAccount,
  validSource,
  validSuccess,
  validToken,
  type Json,
} from '../helpers/upstream-mutations.ts';

/**
 * A seeded property test of how the gateway reads upstream JSON: thousands of answers made by mutating valid
 * ones (test/helpers/upstream-mutations.ts), each read by its parser as the client reads a body
 * (`JSON.parse` of the text, then the parser). Each either throws ShapeError (NotCreated for a create answered
 * `success: false`), never another error, or gives a value whose every field, through the resolvers that turn
 * it into GraphQL values, serializes as the schema's type: an Int within 32 bits, a DateTime an ISO-8601 string
 * its own parser reads back, an enum value in its enum, a non-null field present. The variations contextio-2.0.md
 * documents are read, not refused. PARSE_FUZZ_SEED replays a run; PARSE_FUZZ_CASES widens it.
 */

const SEED = Number(process.env['PARSE_FUZZ_SEED'] ?? 20_261_205);
const CASES = Number(process.env['PARSE_FUZZ_CASES'] ?? 3_000);

const schema = buildSchema();
/** What the few resolvers called here use of the context: `sources` charges its list to the caller's budget. */
const context = { lists: { charge: (_info: unknown, list: unknown[]) => list } };
const info = {} as GraphQLResolveInfo;

/** A field's resolver called on `parent`, as graphql-js calls it (synchronous ones only: those that need no request). */
function resolve(typeName: string, field: string, parent: unknown): unknown {
  const resolver = (resolvers as Record<string, Record<string, unknown>>)[typeName]?.[field];
  if (resolver === undefined) return (parent as Record<string, unknown>)[field];
  const fn = (typeof resolver === 'function' ? resolver : (resolver as { resolve: unknown }).resolve) as (...args: unknown[]) => unknown;
  return fn(parent, {}, context, info);
}

class Violation extends Error {}

/** Checks that `value` is what graphql-js would serialize as `type` without an error; objects are walked by `object`. */
function serializes(type: GraphQLOutputType, value: unknown, path: string, object: (typeName: string, value: unknown, path: string) => void): void {
  if (isNonNullType(type)) {
    if (value === null || value === undefined) throw new Violation(`${path}: null in a non-null field`);
    return serializes(type.ofType, value, path, object);
  }
  if (value === null || value === undefined) return;
  if (value instanceof Promise) throw new Violation(`${path}: a promise where the parsed value answers`);
  if (isListType(type)) {
    if (!Array.isArray(value)) throw new Violation(`${path}: ${typeof value} where a list is`);
    value.forEach((item, i) => serializes(type.ofType, item, `${path}[${i}]`, object));
    return;
  }
  if (isScalarType(type) || isEnumType(type)) {
    let serialized: unknown;
    try {
      serialized = type.serialize(value);
    } catch (error) {
      throw new Violation(`${path}: ${(error as Error).message} (${JSON.stringify(value)?.slice(0, 80)})`);
    }
    if (type.name === 'DateTime') {
      // The scalar's own parser reads what it writes: a four-digit year, a day that exists.
      let read: unknown;
      try {
        read = DateTime.parseValue(serialized);
      } catch {
        throw new Violation(`${path}: DateTime ${JSON.stringify(serialized)} is no ISO-8601 instant`);
      }
      if (read !== serialized) throw new Violation(`${path}: DateTime ${JSON.stringify(serialized)} reads back as ${JSON.stringify(read)}`);
    }
    return;
  }
  object(getNamedType(type).name, value, path);
}

/** Every field of `typeName` in `fields`, resolved on `parent` and checked against its schema type. */
function checkFields(typeName: string, parent: unknown, fields: readonly string[], path: string): void {
  const type = schema.getType(typeName);
  assert.ok(isObjectType(type), `${typeName} is an object type`);
  for (const field of fields) {
    const fieldType = type.getFields()[field]!.type;
    serializes(fieldType, resolve(typeName, field, parent), `${path}.${field}`, (inner, value, at) => {
      assert.equal(inner, 'Source', `${at}: only Source objects are walked here`);
      checkFields('Source', value, SOURCE_FIELDS, at);
    });
  }
}

const SOURCE_FIELDS = ['label', 'email', 'username', 'server', 'port', 'useSsl', 'type', 'status', 'statusMessage', 'syncPeriod', 'authenticationType'];
const EMBEDDED_FIELDS = ['id', 'createdAt', 'suspendedAt', 'emailAddresses', 'firstName', 'lastName', 'sources'];
const ACCOUNT_FIELDS = [...EMBEDDED_FIELDS, 'username', 'passwordExpiredAt', 'messageCount', 'fileCount'];
const TOKEN_FIELDS = ['token', 'email', 'createdAt', 'used', 'usedAt', 'expiresAt', 'callbackUrl', 'firstName', 'lastName'];

const checkAccount = (account: ReturnType<typeof parseAccount>, path: string) => checkFields('Account', { complete: true, account }, ACCOUNT_FIELDS, path);

function checkToken(token: ReturnType<typeof parseConnectToken>, path: string): void {
  checkFields('ConnectToken', token, TOKEN_FIELDS, path);
  const { account } = token;
  if (account === null) return;
  if ('reference' in account) {
    if (typeof account.id !== 'string' || account.id === '') throw new Violation(`${path}.account.id: ${JSON.stringify(account.id)}`);
    return;
  }
  checkFields('Account', { complete: false, idOnly: false, account, reach: 'connect-token', full: undefined }, EMBEDDED_FIELDS, `${path}.account`);
}

interface Target {
  name: string;
  bases: () => Json[];
  parse: (value: unknown) => unknown;
  check: (parsed: unknown) => void;
  /** What else than ShapeError it may throw, as designed. */
  refusal?: (error: unknown) => boolean;
}

const list = <T>(check: (item: T, path: string) => void) => (parsed: unknown) => (parsed as T[]).forEach((item, i) => check(item, `$[${i}]`));

const TARGETS: Target[] = [
  { name: 'parseAccount', bases: () => [validAccount(), validEmbeddedAccount()], parse: parseAccount, check: (a) => checkAccount(a as ReturnType<typeof parseAccount>, '$') },
  {
    name: 'listOf(parseAccount)',
    bases: () => [[validAccount(), validAccount('52daabefcea6f9c35a4a0998')], [], [validAccount()]],
    parse: listOf(parseAccount),
    check: list(checkAccount),
  },
  {
    name: 'parseConnectToken',
    bases: () => [validToken(false), validToken(true)],
    parse: parseConnectToken,
    check: (t) => checkToken(t as ReturnType<typeof parseConnectToken>, '$'),
  },
  {
    name: 'listOf(parseConnectToken)',
    bases: () => [[validToken(false), validToken(true, 'fedcba9876543210')], []],
    parse: listOf(parseConnectToken),
    check: list(checkToken),
  },
  {
    name: 'parseCreateConnectToken',
    bases: () => [validCreateConnectToken()],
    parse: parseCreateConnectToken,
    check: (result) => checkFields('CreateConnectTokenPayload', { result, accountId: null }, ['token', 'resourceUrl', 'browserRedirectUrl'], '$'),
    refusal: (error) => error instanceof NotCreated,
  },
  {
    name: 'parseCreateAccount',
    bases: () => [validCreateAccount()],
    parse: parseCreateAccount,
    check: (result) => checkFields('CreateAccountPayload', result, ['id', 'resourceUrl'], '$'),
    refusal: (error) => error instanceof NotCreated,
  },
  {
    name: 'parseSuccess',
    bases: () => [validSuccess(), { success: true, extra: 1 }],
    parse: parseSuccess,
    check: (result) => checkFields('DeleteAccountPayload', { ...(result as object), id: ACCOUNT_ID }, ['success'], '$'),
  },
];

/** Reads `text` as the client reads a body; what was wrong, if anything. */
function verdict(target: Target, text: string): { ok: true } | { ok: false; refused: boolean; problem: string } {
  let parsed: unknown;
  try {
    parsed = target.parse(JSON.parse(text));
  } catch (error) {
    if (error instanceof ShapeError || target.refusal?.(error)) return { ok: false, refused: true, problem: (error as Error).message };
    return { ok: false, refused: false, problem: `threw ${(error as Error).name}: ${(error as Error).message}` };
  }
  try {
    target.check(parsed);
  } catch (error) {
    if (error instanceof Violation) return { ok: false, refused: false, problem: error.message };
    throw error;
  }
  return { ok: true };
}

const shown = (text: string) => (text.length > 1_500 ? `${text.slice(0, 1_500)}… (${text.length} characters)` : text);

function describeFailure(target: Target, index: number, what: string[], text: string, problem: string): string {
  return `PARSE_FUZZ_SEED=${SEED} ${target.name} case ${index}: ${problem}\nmutations: ${what.join('; ')}\nJSON: ${shown(text)}`;
}

/**
 * Variations contextio-2.0.md documents (or the parser's comments name as real servers' ways), each a change to
 * a valid answer of `target` that must still be read.
 */
const TOLERATED: Record<string, Array<[string, (o: Record<string, Json>) => void]>> = {
  account: [
    ['suspended 0', (o) => (o['suspended'] = 0)],
    ['password_expired 0', (o) => (o['password_expired'] = 0)],
    ['timestamps as digits', (o) => (o['created'] = '1234567890')],
    ['nb_messages and nb_files missing', (o) => (delete o['nb_messages'], delete o['nb_files'])],
    ['names empty', (o) => ((o['first_name'] = ''), (o['last_name'] = ''))],
    ['a status outside the set', (o) => ((o['sources'] as Array<Record<string, Json>>)[0]!['status'] = 'SYNCING_SLOWLY')],
    ['status_message null, sync_period missing', (o) => (((o['sources'] as Array<Record<string, Json>>)[1]!['status_message'] = null), delete (o['sources'] as Array<Record<string, Json>>)[1]!['sync_period'])],
    ['use_ssl as 0/1', (o) => ((o['sources'] as Array<Record<string, Json>>)[0]!['use_ssl'] = 1)],
    ['an unknown field', (o) => (o['nb_threads'] = { count: 3 })],
    ['sources {} (PHP)', (o) => (o['sources'] = {})],
    ['an address as the email-address resource', (o) => (o['email_addresses'] = [{ email: 'me@example.com', validated: 1, primary: 1 }])],
  ],
  unusedToken: [
    ['account {}', (o) => (o['account'] = {})],
    ['account []', (o) => (o['account'] = [])],
    ['account a bare id', (o) => (o['account'] = ACCOUNT_ID)],
    ['account missing', (o) => delete o['account']],
    ['used false', (o) => (o['used'] = false)],
    ['a stray embedded account', (o) => (o['account'] = { id: ACCOUNT_ID, junk: true })],
  ],
  usedToken: [
    ['expires false', (o) => (o['expires'] = false)],
    ['expires still the old integer', (o) => (o['expires'] = 1_700_086_400)],
    ['account a bare id', (o) => (o['account'] = ACCOUNT_ID)],
    ['account the whole account', (o) => (o['account'] = validAccount())],
    ['embedded suspended 0', (o) => (o['account'] = { ...validEmbeddedAccount(), suspended: 0 })],
  ],
  success: [
    ['success "true"', (o) => (o['success'] = 'true')],
    ['success 1', (o) => (o['success'] = 1)],
  ],
};

describe('reading mutated upstream answers (seeded)', () => {
  it('reads every variation contextio-2.0.md documents, alone and together', () => {
    const random = new Random(SEED);
    const groups: Array<[Target, () => Record<string, Json>, keyof typeof TOLERATED]> = [
      [TARGETS[0]!, () => validAccount(), 'account'],
      [TARGETS[2]!, () => validToken(false), 'unusedToken'],
      [TARGETS[2]!, () => validToken(true), 'usedToken'],
      [TARGETS[4]!, validCreateConnectToken, 'success'],
      [TARGETS[5]!, () => validCreateAccount(), 'success'],
      [TARGETS[6]!, validSuccess, 'success'],
    ];
    for (const [target, base, group] of groups) {
      const variations = TOLERATED[group]!;
      const sets = [...variations.map((v) => [v]), ...Array.from({ length: 20 }, () => random.subset(variations, 0.4))];
      for (const [index, set] of sets.entries()) {
        const value = base();
        for (const [, change] of set) change(value);
        const text = toText(value);
        const result = verdict(target, text);
        assert.ok(result.ok, describeFailure(target, index, set.map(([name]) => name), text, result.ok ? '' : `refused: ${result.problem}`));
      }
    }
  });

  it('reads a status outside the documented set as UNKNOWN, and a used token whose account is a bare id as that account', () => {
    const random = new Random(SEED);
    for (let i = 0; i < 50; i++) {
      const status = random.pick(['SYNCING', 'ok', ' OK', 'UNKNOWN', 'toString', '__proto__', 'constructor', '\ud800', 7]);
      const account = parseAccount(JSON.parse(toText({ ...validAccount(), sources: [{ ...validSource(0), status }] })));
      assert.equal(resolve('Source', 'status', account.sources[0]), 'UNKNOWN', JSON.stringify(status));
    }
    assert.deepEqual(parseConnectToken({ ...validToken(true), account: ACCOUNT_ID }).account, { id: ACCOUNT_ID, reference: true });
  });

  it('reads what the model says of a status, a status message, a used token\'s account and a redirect URL', () => {
    // What the reading must make of each shape, not only that it is read or refused: a status "" (or a message "")
    // says nothing, an id without the fields every account has names the account as a bare id does, and a page
    // the frontend sends its user's browser to is an http(s) one.
    const random = new Random(SEED ^ hash('model'));
    for (let i = 0; i < 200; i++) {
      const status = random.pick<Json | undefined>([undefined, null, '', 'OK', 'CONNECTED', 'SYNCING', 7]);
      const message = random.pick<Json | undefined>([undefined, null, '', 'The mail server refused the credentials.']);
      const source: Record<string, Json> = { ...validSource(0) };
      delete source['status'];
      delete source['status_message'];
      if (status !== undefined) source['status'] = status;
      if (message !== undefined) source['status_message'] = message;
      const parsed = parseAccount(JSON.parse(toText({ ...validAccount(), sources: [source] }))).sources[0];
      const expected = status === undefined || status === null || status === '' ? null : SOURCE_STATUSES.includes(status as never) ? status : 'UNKNOWN';
      assert.equal(resolve('Source', 'status', parsed), expected, `status ${JSON.stringify(status)}`);
      assert.equal(resolve('Source', 'statusMessage', parsed), message || null, `status_message ${JSON.stringify(message)}`);

      // Some of the fields every embedded account has, never all of them: a reference still.
      const partial: Record<string, Json> = { id: ACCOUNT_ID };
      const full = validEmbeddedAccount() as Record<string, Json>;
      const kept = random.pick([[], ['first_name'], ['created'], ['email_addresses'], ['sources'], ['created', 'sources'], ['email_addresses', 'last_name']]);
      for (const key of kept) partial[key] = full[key]!;
      assert.deepEqual(parseConnectToken({ ...validToken(true), account: partial }).account, { id: ACCOUNT_ID, reference: true }, `account ${JSON.stringify(partial)}`);

      const url = random.pick(['https://api.context.io/connect/t', 'http://localhost:8080/connect/t', 'javascript:alert(1)', 'data:text/html,x', 'ftp://example.com/x', '//example.com/x', 'connect/t', 'HTTPS://API.CONTEXT.IO/connect/t']);
      const http = /^https?:\/\//i.test(url);
      const result = verdict(TARGETS[4]!, toText({ ...validCreateConnectToken(), browser_redirect_url: url }));
      assert.equal(result.ok, http, `browser_redirect_url ${url}: ${result.ok ? 'read' : result.problem}`);
      if (!result.ok) assert.ok(result.refused, `browser_redirect_url ${url} refused with ShapeError: ${result.problem}`);
    }
  });

  for (const target of TARGETS) {
    it(`${target.name}: any mutation of a valid answer is read into the schema's types or refused with ShapeError`, () => {
      const random = new Random(SEED ^ hash(target.name));
      const bases = target.bases();
      const failures: string[] = [];
      let accepted = 0;
      for (let index = 0; index < CASES; index++) {
        let base = random.pick(bases);
        if (target.name.includes('ConnectToken') && !target.name.includes('Create')) base = withAccountShape(random, base);
        const { value, what } = mutate(random, base);
        const text = toText(value);
        const result = verdict(target, text);
        if (result.ok) accepted++;
        else if (!result.refused) failures.push(describeFailure(target, index, what, text, result.problem));
      }
      assert.deepEqual(failures.slice(0, 5), [], `${failures.length} of ${CASES} failed`);
      // The mutations are not all refusals: a test that refused everything would pass vacuously.
      assert.ok(accepted > CASES / 20, `${accepted} of ${CASES} accepted`);
    });
  }

  it('reads raw-text edges of a timestamp or a count: -0, 1e400, 1E3, digits, huge', () => {
    const edges = ['-0', '-0.0', '1e400', '1E3', '"0"', '"1e3"', '1e-7', '5e-324', '253402300799.999', '8640000000000', '8640000000001', '"8640000000000"', '1e21', '-1'];
    const failures: string[] = [];
    for (const edge of edges) {
      for (const key of ['created', 'suspended', 'password_expired', 'nb_messages', 'nb_files']) {
        const text = toText({ ...validAccount(), [key]: raw(edge) });
        const result = verdict(TARGETS[0]!, text);
        if (!result.ok && !result.refused) failures.push(`${key}: ${edge}: ${result.problem}`);
      }
      for (const key of ['created', 'used', 'expires']) {
        const result = verdict(TARGETS[2]!, toText({ ...validToken(false), [key]: raw(edge) }));
        if (!result.ok && !result.refused) failures.push(`token ${key}: ${edge}: ${result.problem}`);
      }
    }
    assert.deepEqual(failures, []);
  });
});

/** A connect token base with its `used` and `account` in one of the shapes servers sent, and some not. */
function withAccountShape(random: Random, base: Json): Json {
  if (!random.chance(0.4)) return base;
  const reshape = (token: Json): Json => {
    if (typeof token !== 'object' || token === null || Array.isArray(token)) return token;
    return { ...token, used: random.pick<Json>([0, false, 1_700_000_600, '1700000600', null]), account: embeddedAccountShape(random) };
  };
  return Array.isArray(base) ? base.map(reshape) : reshape(base);
}

function hash(text: string): number {
  let h = 0;
  for (const c of text) h = (Math.imul(h, 31) + c.charCodeAt(0)) | 0;
  return h >>> 0;
}
