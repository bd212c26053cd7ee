import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { JWTPayload } from 'jose';
import type { AccountFilter, EmulatorStore } from '../../src/emulator/store.ts';
import type { UpstreamAccount } from '../../src/upstream/types.ts';
import { hsToken, SECRET, useAuthStack, type GqlResponse } from '../auth/helpers.ts';
import {
  costBound,
  depth,
  errorsOf,
  Expecter,
  drawClaimedAccounts,
  Generator,
  kept,
  render,
  seedWorld,
  sortedQuery,
  type Access,
  type Field,
  type Variable,
  type World,
} from '../helpers/operation-model.ts';
import { Random } from '../helpers/random.ts';

/*
 * The gateway's own authorization (CONTRACT.md's "gateway's own authentication and authorization", docs/auth.md),
 * checked on random callers running random operations: admins, callers whose `accounts` claim lists a random
 * subset of the accounts (none included), and requests whose token is missing, expired, wrongly signed or
 * malformed. The test's own model (test/helpers/operation-model.ts, rules A1-A4, and the write rules below) says
 * which fields each caller may run; each answer must be FORBIDDEN (null, its siblings resolved) exactly there, or
 * UNAUTHENTICATED whole, with no upstream request for what was refused; no data of an account outside the caller's
 * scope may appear anywhere in an answer, but through a connect token the operation names (the capability); and
 * what is allowed must answer the data the store holds. Then paging: `endCursor`/`after` followed through
 * `accounts` (filtered or not) and `connectTokens`, pages of random sizes, one upstream request each.
 *
 * RANDOM_AUTHORIZATION_SEED=<n> explores another seed; a failure names the seed, the case, the caller's claims and
 * the operation.
 */

const SEED = Number(process.env['RANDOM_AUTHORIZATION_SEED'] ?? 20_240_705);
const QUERIES = 120;
const MUTATIONS = 60;
const PAGINGS = 16;

/** A key pair's other secret: a token it signs is wrongly signed here. */
const OTHER_SECRET = 'another-secret-that-is-long-enough-for-hs256-9876543210';
const CALLBACK = 'https://app.example.com/cb';

// ---- callers ------------------------------------------------------------------------------------------------

interface Caller {
  /** What the request carries, for the failure's message. */
  describe: string;
  /** The bearer token, none when missing. */
  token: string | undefined;
  /** The access of a valid token; `undefined`: the token is not valid (UNAUTHENTICATED). */
  access: Access | undefined;
}

const hasAdminScope = (scope: string | undefined): boolean => (scope ?? '').split(' ').includes('contextio:admin');

/**
 * A random caller over `accountIds`: an admin, a caller with some of the accounts in its claim (or none, or an
 * unknown id beside them), or one whose token is not valid. `sub` is the case's own, so that no caller's budget
 * of reads or writes runs out over the run.
 */
async function drawCaller(random: Random, accountIds: readonly string[], sub: string): Promise<Caller> {
  const roll = random.next();
  const now = Math.floor(Date.now() / 1000);
  if (roll < 0.2) {
    const claims: JWTPayload = { sub, scope: random.pick(['contextio:admin', 'openid contextio:admin', 'contextio:admin profile']) };
    if (random.chance(0.3)) claims['accounts'] = random.subset(accountIds, 0.3, false);
    return { describe: `admin ${JSON.stringify(claims)}`, token: await hsToken(claims), access: { admin: true, accounts: new Set() } };
  }
  if (roll < 0.8) {
    const accounts = drawClaimedAccounts(random, accountIds);
    const claims: JWTPayload = { sub };
    // No claim at all is a valid token too, with nothing in scope; so is a scope that only looks like the admin's.
    if (accounts.length > 0 || random.chance(0.5)) claims['accounts'] = accounts;
    if (random.chance(0.25)) claims['scope'] = random.pick(['openid', 'contextio:admin-readonly', 'openid profile', 'x-contextio:admin']);
    return {
      describe: `scoped ${JSON.stringify(claims)}`,
      token: await hsToken(claims),
      access: { admin: hasAdminScope(claims['scope'] as string | undefined), accounts: new Set(accounts) },
    };
  }
  const claims: JWTPayload = { sub, scope: 'contextio:admin' };
  const how = random.pick(['missing', 'expired', 'not yet valid', 'wrongly signed', 'tampered', 'malformed', 'no exp'] as const);
  let token: string | undefined;
  switch (how) {
    case 'missing':
      token = undefined;
      break;
    case 'expired':
      token = await hsToken({ ...claims, exp: now - 3600 });
      break;
    case 'not yet valid':
      token = await hsToken({ ...claims, nbf: now + 3600 });
      break;
    case 'wrongly signed':
      token = await hsToken(claims, OTHER_SECRET);
      break;
    case 'tampered': {
      // A scoped token whose payload was swapped for an admin's: its signature is the scoped one's.
      const [head, , signature] = (await hsToken({ sub, accounts: [] })).split('.');
      const body = Buffer.from(JSON.stringify({ ...claims, exp: now + 3600 })).toString('base64url');
      token = `${head}.${body}.${signature}`;
      break;
    }
    case 'malformed':
      token = random.pick(['not-a-jwt', 'a.b.c', (await hsToken(claims)).slice(0, -6)]);
      break;
    case 'no exp': {
      // hsToken adds an `exp`; a token without one is refused (docs/auth.md: `exp` is required).
      const [head, body, signature] = (await hsToken(claims)).split('.');
      const { exp: _exp, ...rest } = JSON.parse(Buffer.from(body!, 'base64url').toString()) as JWTPayload;
      token = `${head}.${Buffer.from(JSON.stringify(rest)).toString('base64url')}.${signature}`;
      break;
    }
  }
  return { describe: `unauthenticated (${how})`, token, access: undefined };
}

/** The root fields that need the admin scope, both non-null. */
const ADMIN_ROOTS = new Set(['accounts', 'connectTokens']);

/**
 * For a caller without the admin scope, an operation with the admin-only roots alone or without them. Refused,
 * one of them nulls the whole answer (it is non-null), and graphql, which has already started the other roots,
 * answers without waiting for them: which of their requests are made, and whose errors are reported, is then a
 * race, where the test checks exact answers and requests.
 */
function apartFromAdminRoots(drawn: { fields: Field[]; variables: Variable[] }, random: Random): { fields: Field[]; variables: Variable[] } {
  const admin = drawn.fields.filter((f) => ADMIN_ROOTS.has(f.name));
  if (admin.length === 0 || admin.length === drawn.fields.length) return drawn;
  const fields = random.chance(0.3) ? admin : drawn.fields.filter((f) => !ADMIN_ROOTS.has(f.name));
  const used = new Set<string>();
  const visit = (f: Field): void => {
    for (const a of f.args) if (a.variable) used.add(a.variable);
    if (f.directive?.variable) used.add(f.directive.variable);
    f.children?.forEach(visit);
  };
  fields.forEach(visit);
  return { fields, variables: drawn.variables.filter((v) => used.has(v.name)) };
}

const inScope = (access: Access, id: string): boolean => access.admin || access.accounts.has(id);

// ---- what must never show -----------------------------------------------------------------------------------

/** Strings that belong to one account alone: its id, addresses, sources' addresses, and its own connect tokens. */
function ownStrings(account: UpstreamAccount, tokens: readonly string[]): string[] {
  return [account.id, ...account.email_addresses, ...account.sources.flatMap((s) => (s.email ? [s.email] : [])), ...tokens];
}

/**
 * The strings of accounts the caller may not read that appear in the answer, when the request did not name them
 * itself (an error may say which id it refused). An account whose used top-level token the request names is
 * readable by the capability rule.
 */
function leaked(
  response: GqlResponse,
  request: string,
  access: Access,
  accounts: Iterable<UpstreamAccount>,
  tokensOf: (id: string) => readonly string[],
  capability: (request: string) => Set<string>,
): string[] {
  if (access.admin) return [];
  const readable = capability(request);
  const answer = JSON.stringify(response.body);
  const hidden = [...accounts].filter((a) => !access.accounts.has(a.id) && !readable.has(a.id)).flatMap((a) => ownStrings(a, tokensOf(a.id)));
  return hidden.filter((s) => answer.includes(s) && !request.includes(s));
}

/** The ids of the accounts created by the used top-level tokens that `request` names. */
function capabilityOf(world: World): (request: string) => Set<string> {
  return (request) => new Set(world.topLevel.filter((t) => t.account && request.includes(t.token)).map((t) => t.account!.id));
}

function assertUnauthenticated(response: GqlResponse, calls: string[]): void {
  assert.equal(response.status, 401);
  assert.equal(response.body.data, undefined);
  assert.deepEqual(errorsOf(response), [' UNAUTHENTICATED']);
  assert.deepEqual(calls, [], 'no upstream request for a request not authenticated');
}

function withContext(error: unknown, context: string): never {
  if (error instanceof Error) error.message = `seed ${SEED}, ${context}\n${error.message}`;
  throw error;
}

// ---- the test -------------------------------------------------------------------------------------------------

describe('random callers: each field run or refused as the caller\'s access says, and no account outside it shown', () => {
  const stack = useAuthStack({ auth: { jwtSecret: SECRET } });
  let world: World;

  /** The upstream requests since the last call, as `METHOD path[?sorted query]`. */
  const calls = (): string[] => {
    const made = stack.emulator.requests.map((r) => `${r.method} ${r.path}${r.query ? `?${sortedQuery(new URLSearchParams(r.query))}` : ''}`);
    stack.emulator.clearRequests();
    return made;
  };

  it(`answers ${QUERIES} random queries of random callers (seed ${SEED})`, async () => {
    world = seedWorld(stack.emulator.store);
    stack.emulator.clearRequests();
    const random = new Random(SEED);
    const generator = new Generator(random, world);
    const ids = world.accounts.map((a) => a.id);
    const tokensOf = (id: string) => (world.ofAccount.get(id) ?? []).map((t) => t.token);
    for (let index = 0; index < QUERIES; index++) {
      const caller = await drawCaller(random, ids, `query-${index}`);
      // Often a used top-level token's account too: what the capability rule lets any valid caller read.
      const usedTokenRoots = random.chance(0.5) ? 1 : 0;
      let drawn = generator.operation({ usedTokenRoots });
      while (costBound(drawn.fields) > 6_000 || depth(drawn.fields) > 11) drawn = generator.operation({ usedTokenRoots });
      if (caller.access && !caller.access.admin) drawn = apartFromAdminRoots(drawn, random);
      const text = render(drawn.fields, drawn.variables, random);
      const variables = Object.fromEntries(drawn.variables.map((v) => [v.name, v.value]));
      try {
        const response = await stack.gql(text, caller.token, variables);
        const made = calls();
        if (caller.access === undefined) {
          assertUnauthenticated(response, made);
          continue;
        }
        const roots = kept(drawn.fields);
        if (roots.length > 0 && roots.every((f) => ADMIN_ROOTS.has(f.name)) && !caller.access.admin) {
          // Both lists are non-null (AccountConnection!, ConnectTokenConnection!): refused, the first nulls the
          // whole answer, as docs/auth.md says of a refused non-null field (its nearest nullable parent is null,
          // here `data`), and graphql reports that error alone.
          assert.equal(response.status, 200);
          assert.equal(response.body.data, null);
          assert.deepEqual(errorsOf(response), [`${roots[0]!.key} FORBIDDEN`]);
          assert.deepEqual(made, [], 'no upstream request for a refused field');
          continue;
        }
        const expected = new Expecter(world, caller.access).run(roots);
        assert.equal(response.status, 200);
        assert.deepEqual(errorsOf(response), expected.errors, 'errors');
        assert.deepEqual(response.body.data, expected.data, 'data');
        const counted = new Map<string, number>();
        for (const call of made) counted.set(call, (counted.get(call) ?? 0) + 1);
        assert.deepEqual(
          {
            missing: expected.required.filter((r) => !counted.has(r)),
            unexpected: [...counted.keys()].filter((c) => !expected.required.includes(c) && !expected.optional.includes(c)).sort(),
            repeated: [...counted].filter(([, n]) => n > 1).map(([c]) => c),
          },
          { missing: [], unexpected: [], repeated: [] },
          `upstream requests: ${JSON.stringify(made.sort())}; required: ${JSON.stringify(expected.required)}; optional: ${JSON.stringify(expected.optional)}`,
        );
        const request = `${text}\n${JSON.stringify(variables)}`;
        assert.deepEqual(leaked(response, request, caller.access, world.accounts, tokensOf, capabilityOf(world)), [], 'out-of-scope data in the answer');
      } catch (error) {
        withContext(error, `query ${index}, caller ${caller.describe}:\n${text}\nvariables: ${JSON.stringify(variables)}`);
      }
    }
  });

  it(`pages through accounts and connectTokens by endCursor/after, ${PAGINGS} times (seed ${SEED})`, async () => {
    const random = new Random(SEED + 1);
    const { store } = stack.emulator;
    const nobody = await hsToken({ sub: 'paging-scoped', accounts: world.accounts.map((a) => a.id) });
    const admin = await hsToken({ sub: 'paging-admin', scope: 'contextio:admin' });
    for (let run = 0; run < PAGINGS; run++) {
      const list = random.pick(['accounts', 'accounts', 'connectTokens'] as const);
      // The filter's meaning is the upstream's: the emulator's own listing says which accounts it keeps.
      let filter: AccountFilter = {};
      let filterText = '';
      if (list === 'accounts') {
        const kind = random.pick(['none', 'none', 'email', 'status', 'statusOk'] as const);
        if (kind === 'email') filter = { email: random.pick(random.pick(world.accounts).email_addresses).toUpperCase() };
        if (kind === 'status') filter = { status: random.pick(['OK', 'INVALID_CREDENTIALS', 'CONNECTION_IMPOSSIBLE', 'DISABLED']) };
        if (kind === 'statusOk') filter = { status_ok: random.chance(0.5) };
        if (filter.email) filterText = `, filter: { email: ${JSON.stringify(filter.email)} }`;
        if (filter.status) filterText = `, filter: { status: ${filter.status} }`;
        if (filter.status_ok !== undefined) filterText = `, filter: { statusOk: ${filter.status_ok} }`;
      }
      const whole = list === 'accounts' ? store.listAccounts(filter).map((a) => a.id) : world.topLevel.map((t) => t.token);
      const item = list === 'accounts' ? 'id' : 'token';
      const text = `query Page($first: Int, $after: String) {
        page: ${list}(first: $first, after: $after${filterText}) { edges { cursor node { ${item} } } nodes { ${item} } pageInfo { hasNextPage endCursor } }
      }`;
      const seen: string[] = [];
      const sizes: number[] = [];
      let after: string | null = null;
      let lastCursor: string | null = null;
      try {
        for (let pages = 0; ; pages++) {
          assert.ok(pages <= whole.length + 1, 'the pages end');
          const first: number = 1 + random.int(list === 'accounts' ? 6 : 8);
          sizes.push(first);
          const response = await stack.gql(text, admin, { first, ...(after === null ? {} : { after }) });
          const made = calls();
          assert.deepEqual(errorsOf(response), []);
          const page = response.body.data!['page'] as {
            edges: Array<{ cursor: string; node: Record<string, string> }>;
            nodes: Array<Record<string, string>>;
            pageInfo: { hasNextPage: boolean; endCursor: string | null };
          };
          const items = page.nodes.map((n) => n[item]!);
          assert.deepEqual(page.edges.map((e) => e.node[item]), items, 'edges and nodes');
          assert.deepEqual(items, whole.slice(seen.length, seen.length + first), `page ${pages}`);
          assert.equal(page.pageInfo.hasNextPage, seen.length + first < whole.length, 'hasNextPage');
          assert.equal(page.pageInfo.endCursor, page.edges.at(-1)?.cursor ?? null, 'endCursor is the last edge\'s cursor');
          // Accounts are paged by the upstream (one more than the page, for hasNextPage); connect tokens, which it
          // does not page, are fetched whole for each page.
          const query = new URLSearchParams({ limit: String(first + 1), offset: String(seen.length) });
          if (filter.email) query.set('email', filter.email);
          if (filter.status) query.set('status', filter.status);
          if (filter.status_ok !== undefined) query.set('status_ok', filter.status_ok ? '1' : '0');
          assert.deepEqual(made, [list === 'accounts' ? `GET /accounts?${sortedQuery(query)}` : 'GET /connect_tokens'], 'one upstream request a page');
          seen.push(...items);
          if (page.pageInfo.endCursor !== null) lastCursor = page.pageInfo.endCursor;
          if (!page.pageInfo.hasNextPage) break;
          after = page.pageInfo.endCursor;
        }
        assert.deepEqual(seen, whole, 'the pages make the whole list');
        assert.equal(new Set(seen).size, seen.length, 'no item twice');
        // The admin's cursor in the hands of a caller without the admin scope (every account in its claim): refused
        // before it is read, and nothing asked.
        if (lastCursor !== null) {
          const refused = await stack.gql(text, nobody, { first: 1, after: lastCursor });
          assert.equal(refused.body.data, null); // `page` is non-null: its refusal nulls the answer
          assert.deepEqual(errorsOf(refused), ['page FORBIDDEN']);
          assert.deepEqual(calls(), []);
        }
      } catch (error) {
        withContext(error, `paging ${run}, ${list}${filterText}, page sizes ${JSON.stringify(sizes)}:\n${text}`);
      }
    }
  });

  it(`answers ${MUTATIONS} random mutations of random callers on fresh accounts (seed ${SEED})`, async () => {
    const random = new Random(SEED + 2);
    const { store } = stack.emulator;
    for (let index = 0; index < MUTATIONS; index++) {
      const fresh = freshAccounts(store, index, random);
      const caller = await drawCaller(random, fresh.accounts.map((a) => a.id), `mutation-${index}`);
      const writes = drawWrites(random, fresh, index);
      const text = `mutation Random { ${writes.map((w) => w.text).join(' ')} }`;
      const before = snapshot(store);
      try {
        const response = await stack.gql(text, caller.token);
        const made = calls();
        if (caller.access === undefined) {
          assertUnauthenticated(response, made);
          assert.equal(snapshot(store), before, 'nothing written');
          continue;
        }
        const { access } = caller;
        const refused = writes.filter((w) => !w.allowed(access));
        if (refused.length > 0) {
          if (writes.length > 1) {
            // Several writes, one refused: the operation is refused whole before the first write (docs/auth.md's
            // mutation precheck), with the first refusal's field and the 403 of FORBIDDEN.
            assert.equal(response.status, 403);
            assert.equal(response.body.data, undefined);
          } else {
            assert.equal(response.status, 200);
            assert.equal(response.body.data, null); // every payload is non-null
          }
          assert.deepEqual(errorsOf(response), [`${refused[0]!.key} FORBIDDEN`]);
          assert.deepEqual(made, [], 'no upstream request for a refused write');
          assert.equal(snapshot(store), before, 'nothing written');
        } else {
          const expected = runWrites(writes, response, fresh);
          assert.equal(response.status, 200);
          assert.deepEqual(errorsOf(response), expected.errors, 'errors');
          assert.deepEqual(response.body.data, expected.data, 'data');
          assert.deepEqual(made.sort(), expected.calls.sort(), 'upstream requests');
          for (const check of expected.stored) check(store);
        }
        const every = [...fresh.accounts, ...fresh.others];
        const tokensOf = (id: string) => fresh.tokens.get(id) ?? [];
        assert.deepEqual(leaked(response, text, access, every, tokensOf, () => new Set()), [], 'out-of-scope data in the answer');
      } catch (error) {
        withContext(error, `mutation ${index}, caller ${caller.describe}:\n${text}`);
      }
    }
  });
});

// ---- mutations ----------------------------------------------------------------------------------------------

/*
 * Writes, as docs/auth.md's table has them:
 *   W1. createConnectToken and deleteConnectToken need a valid token alone; createAccount needs the admin scope;
 *       updateAccount, deleteAccount, createAccountConnectToken and deleteAccountConnectToken need the account in
 *       scope, whether it exists or not.
 *   W2. A refused write makes no request. One refused among several refuses the operation whole (HTTP 403, no
 *       data, the first refusal's error) before any write; one alone fails as a field: `data: null` (its payload
 *       is non-null).
 *   W3. Each allowed write is one request; an unknown account or token is the upstream's 404, NOT_FOUND.
 *   W4. A payload field reads what it names as reading it directly would (the same scope: the write's own), and
 *       loads only what its selection needs: an account's id (and its tokens, listed by id) need no load of it.
 */

/** Per case: two accounts, one with account-level tokens, and unused top-level tokens. */
interface Fresh {
  accounts: UpstreamAccount[];
  /** Accounts of this case's world that are no one's target, to see that they never show. */
  others: UpstreamAccount[];
  /** Each account's account-level tokens in creation order, as the operation changes them. */
  tokens: Map<string, string[]>;
  topLevel: string[];
  names: Map<string, { first_name: string; last_name: string }>;
}

function freshAccounts(store: EmulatorStore, index: number, random: Random): Fresh {
  const fresh: Fresh = { accounts: [], others: [], tokens: new Map(), topLevel: [], names: new Map() };
  for (let j = 0; j < 3; j++) {
    const account = store.createAccount({
      email: `m${index}.${j}@example.com`,
      first_name: `F${index}x${j}`,
      last_name: j === 1 ? `L${index}x${j}` : '',
      sources: [{ email: `m${index}.${j}.src@mail.example.com`, server: 'imap.example.com' }],
    });
    const tokens = Array.from({ length: random.int(3) }, (_, t) => store.createConnectToken(account.id, { callback_url: `${CALLBACK}/m${index}/${j}/${t}` }).token);
    fresh.tokens.set(account.id, tokens);
    fresh.names.set(account.id, { first_name: account.first_name ?? '', last_name: account.last_name ?? '' });
    (j < 2 ? fresh.accounts : fresh.others).push(account);
  }
  for (let t = 0; t < 2; t++) fresh.topLevel.push(store.createConnectToken(null, { callback_url: `${CALLBACK}/m${index}/top/${t}` }).token);
  return fresh;
}

/** The store's accounts and tokens, to see that a refused operation changed nothing. */
function snapshot(store: EmulatorStore): string {
  const accounts = store.listAccounts();
  return JSON.stringify([accounts, store.listConnectTokens(null), accounts.map((a) => store.listConnectTokens(a.id))]);
}

interface Write {
  key: string;
  name: string;
  text: string;
  allowed(access: Access): boolean;
  /** Its expected answer, requests and stored effect, given the state before it; `response` for server-made ids. */
  run(state: Fresh, payload: Record<string, unknown> | undefined): WriteOutcome;
}

type WriteOutcome =
  | { ok: true; data: Record<string, unknown>; calls: string[]; stored: (store: EmulatorStore) => void }
  | { ok: false; code: string; calls: string[] };

const NOT_AN_ID = 'ffffffffffffffffffffffff';

/**
 * One write alone (any target, unknown ones included), or two or three writes on targets that exist (so that each
 * runs: an earlier one failing would leave the later ones unrun, which says nothing of access).
 */
function drawWrites(random: Random, fresh: Fresh, index: number): Write[] {
  const count = random.chance(0.6) ? 1 : 2 + random.int(2);
  const writes: Write[] = [];
  const usedTokens = new Set<string>();
  for (let i = 0; i < count; i++) {
    const key = `w${i}`;
    const alone = count === 1;
    const account = alone && random.chance(0.1) ? NOT_AN_ID : random.pick([...fresh.accounts, ...(random.chance(0.2) ? fresh.others : [])]).id;
    const kinds = ['updateAccount', 'createConnectToken', 'createAccountConnectToken', 'deleteConnectToken', 'deleteAccountConnectToken', 'createAccount'];
    if (alone) kinds.push('deleteAccount');
    const kind = random.pick(kinds);
    const unusedToken = (candidates: string[]): string | undefined => {
      const left = candidates.filter((t) => !usedTokens.has(t));
      const token = left.length > 0 ? random.pick(left) : undefined;
      if (token) usedTokens.add(token);
      return token;
    };
    switch (kind) {
      case 'updateAccount': {
        const input: Record<string, string> = {};
        if (random.chance(0.7)) input['firstName'] = `N${index}x${i}`;
        if (random.chance(0.5) || !input['firstName']) input['lastName'] = `M${index}x${i}`;
        const selection = random.subset(['id', 'firstName', 'lastName', 'emailAddresses', 'connectTokens { token }'], 0.4);
        writes.push(updateAccount(key, account, input, selection));
        break;
      }
      case 'deleteAccount':
        writes.push(simpleWrite(key, 'deleteAccount', `deleteAccount(id: "${account}") { success id }`, account, `DELETE /accounts/${account}`, (state) => {
          if (!state.tokens.has(account)) return undefined;
          state.tokens.delete(account);
          return { data: { success: true, id: account }, stored: (store) => assert.equal(store.getAccount(account), undefined) };
        }));
        break;
      case 'createConnectToken':
        writes.push(createToken(key, null, random.chance(0.5), random.chance(0.5)));
        break;
      case 'createAccountConnectToken':
        writes.push(createToken(key, account, random.chance(0.5), false));
        break;
      case 'deleteConnectToken': {
        // A top-level token of the case, or (alone) an account's token or an unknown one: neither is found there.
        const token = (alone && random.chance(0.3) ? random.pick([...(fresh.tokens.get(fresh.accounts[0]!.id) ?? []), 'nosuchtoken00000']) : undefined) ?? unusedToken(fresh.topLevel);
        if (token === undefined) break;
        writes.push(
          simpleWrite(key, 'deleteConnectToken', `deleteConnectToken(token: "${token}") { success token }`, null, `DELETE /connect_tokens/${token}`, (state) => {
            if (!state.topLevel.includes(token)) return undefined;
            state.topLevel = state.topLevel.filter((t) => t !== token);
            return { data: { success: true, token }, stored: (store) => assert.equal(store.getConnectToken(token), undefined) };
          }),
        );
        break;
      }
      case 'deleteAccountConnectToken': {
        const own = fresh.tokens.get(account) ?? [];
        const token = alone && random.chance(0.3) ? random.pick([...fresh.topLevel, 'nosuchtoken00000']) : unusedToken(own);
        if (token === undefined) break;
        writes.push(
          simpleWrite(
            key,
            'deleteAccountConnectToken',
            `deleteAccountConnectToken(accountId: "${account}", token: "${token}") { success token }`,
            account,
            `DELETE /accounts/${account}/connect_tokens/${token}`,
            (state) => {
              const tokens = state.tokens.get(account);
              if (!tokens?.includes(token)) return undefined;
              state.tokens.set(account, tokens.filter((t) => t !== token));
              return { data: { success: true, token }, stored: (store) => assert.equal(store.getConnectToken(token), undefined) };
            },
          ),
        );
        break;
      }
      case 'createAccount':
        writes.push(createAccount(key, `c${index}x${i}@example.com`, random.subset(['id', 'emailAddresses', 'firstName'], 0.4)));
        break;
    }
  }
  // A draw that found no token to delete: one write of a kind that needs none.
  if (writes.length === 0) writes.push(createToken('w0', null, true, true));
  return writes;
}

/** A write whose payload is `{ success, id|token }`, named on `account` (null: needs a valid token alone). */
function simpleWrite(
  key: string,
  name: string,
  field: string,
  account: string | null,
  call: string,
  apply: (state: Fresh) => { data: Record<string, unknown>; stored: (store: EmulatorStore) => void } | undefined,
): Write {
  return {
    key,
    name,
    text: `${key}: ${field}`,
    allowed: (access) => account === null || inScope(access, account),
    run(state) {
      const done = apply(state);
      return done ? { ok: true, ...done, calls: [call] } : { ok: false, code: 'NOT_FOUND', calls: [call] };
    },
  };
}

function updateAccount(key: string, id: string, input: Record<string, string>, selection: string[]): Write {
  const inputText = Object.entries(input).map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join(', ');
  return {
    key,
    name: 'updateAccount',
    text: `${key}: updateAccount(id: "${id}", input: { ${inputText} }) { success account { ${selection.join(' ')} } }`,
    allowed: (access) => inScope(access, id),
    run(state) {
      const call = `POST /accounts/${id}`;
      const names = state.names.get(id);
      if (!names || !state.tokens.has(id)) return { ok: false, code: 'NOT_FOUND', calls: [call] };
      if (input['firstName'] !== undefined) names.first_name = input['firstName'];
      if (input['lastName'] !== undefined) names.last_name = input['lastName'];
      const account = state.accounts.find((a) => a.id === id) ?? state.others.find((a) => a.id === id)!;
      const tokens = [...state.tokens.get(id)!];
      const calls = [call];
      // W4: the id (and the tokens, listed by id) need no load of the account.
      if (selection.some((f) => ['firstName', 'lastName', 'emailAddresses'].includes(f))) calls.push(`GET /accounts/${id}`);
      if (selection.includes('connectTokens { token }')) calls.push(`GET /accounts/${id}/connect_tokens`);
      const values: Record<string, unknown> = {
        id,
        firstName: names.first_name || null,
        lastName: names.last_name || null,
        emailAddresses: account.email_addresses,
        connectTokens: tokens.map((token) => ({ token })),
      };
      return {
        ok: true,
        data: { success: true, account: Object.fromEntries(selection.map((f) => [f.split(' ')[0]!, values[f.split(' ')[0]!]])) },
        calls,
        stored: (store) => {
          const now = store.getAccount(id)!;
          // The names once every write of the operation is made (a later one may change them again).
          assert.deepEqual({ first_name: now.first_name, last_name: now.last_name }, names);
        },
      };
    },
  };
}

/** createConnectToken (`account` null) or createAccountConnectToken, its payload's token read back when `read`. */
function createToken(key: string, account: string | null, read: boolean, withAccount: boolean): Write {
  const callbackUrl = `${CALLBACK}/new/${key}`;
  const selection = read ? `connectToken { token callbackUrl used${withAccount ? ' account { id }' : ''} }` : '';
  const field = account === null ? 'createConnectToken(' : `createAccountConnectToken(accountId: "${account}", `;
  return {
    key,
    name: account === null ? 'createConnectToken' : 'createAccountConnectToken',
    text: `${key}: ${field}input: { callbackUrl: "${callbackUrl}" }) { token ${selection} }`,
    allowed: (access) => account === null || inScope(access, account),
    run(state, payload) {
      const base = account === null ? '/connect_tokens' : `/accounts/${account}/connect_tokens`;
      if (account !== null && !state.tokens.has(account)) return { ok: false, code: 'NOT_FOUND', calls: [`POST ${base}`] };
      const token = String(payload?.['token']);
      if (account === null) state.topLevel.push(token);
      else state.tokens.get(account)!.push(token);
      const data: Record<string, unknown> = { token };
      if (read) data['connectToken'] = { token, callbackUrl, used: false, ...(withAccount ? { account: null } : {}) };
      return {
        ok: true,
        data,
        calls: [`POST ${base}`, ...(read ? [`GET ${base}/${token}`] : [])],
        stored: (store) => assert.equal(store.getConnectToken(token, account)?.callback_url, callbackUrl),
      };
    },
  };
}

function createAccount(key: string, email: string, selection: string[]): Write {
  return {
    key,
    name: 'createAccount',
    text: `${key}: createAccount(input: { email: "${email}" }) { id account { ${selection.join(' ')} } }`,
    allowed: (access) => access.admin,
    run(state, payload) {
      const id = String(payload?.['id']);
      state.tokens.set(id, []);
      const values: Record<string, unknown> = { id, emailAddresses: [email], firstName: null };
      return {
        ok: true,
        data: { id, account: Object.fromEntries(selection.map((f) => [f, values[f]])) },
        calls: ['POST /accounts', ...(selection.some((f) => f !== 'id') ? [`GET /accounts/${id}`] : [])],
        stored: (store) => assert.deepEqual(store.getAccount(id)?.email_addresses, [email]),
      };
    },
  };
}

/**
 * The expected answer of writes that are all allowed, run one after another (graphql runs a mutation's fields
 * serially); the ids and tokens the upstream made are read from the answer, and checked as such by the store.
 */
function runWrites(writes: Write[], response: GqlResponse, fresh: Fresh) {
  const data: Record<string, unknown> = {};
  const errors: string[] = [];
  const calls: string[] = [];
  const stored: Array<(store: EmulatorStore) => void> = [];
  for (const write of writes) {
    const payload = response.body.data?.[write.key] as Record<string, unknown> | undefined;
    const outcome = write.run(fresh, payload);
    calls.push(...outcome.calls);
    if (!outcome.ok) {
      // Its payload is non-null: the whole data is null, and no later write runs (drawWrites keeps failures alone).
      errors.push(`${write.key} ${outcome.code}`);
      return { data: null, errors, calls, stored };
    }
    data[write.key] = outcome.data;
    stored.push(outcome.stored);
  }
  return { data, errors, calls, stored };
}
