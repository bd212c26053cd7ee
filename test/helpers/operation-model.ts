import type { EmulatorStore } from '../../src/emulator/store.ts';
import type { UpstreamAccount, UpstreamConnectToken, UpstreamEmbeddedAccount, UpstreamSource } from '../../src/upstream/types.ts';
import type { Random } from './random.ts';
import type { GraphQLResponse } from './stack.ts';

/*
 * The randomized operations' model, shared by the suites that draw them (test/gateway/random-operations.test.ts,
 * test/gateway/random-authorization.test.ts, test/gateway/random-concurrency.test.ts, test/resilience/cost-soundness.test.ts): a small world seeded in the emulator, operations drawn over it,
 * their text, and the test's own expectation of each (the upstream requests it needs and the answer), worked out
 * from the rules written below, not from the gateway's resolvers, selection or cost code. The expectation takes
 * the caller's access (`Access`): an admin's by default, everything reachable.
 */

// ---- the world ----------------------------------------------------------------------------------------------

export interface World {
  /** Accounts in creation order (the order `GET /accounts` lists them in). */
  accounts: UpstreamAccount[];
  byId: Map<string, UpstreamAccount>;
  /** Top-level tokens in creation order. */
  topLevel: UpstreamConnectToken[];
  /** Each account's account-level tokens in creation order. */
  ofAccount: Map<string, UpstreamConnectToken[]>;
  /** Every token string, with its owner (null: top-level). */
  owner: Map<string, string | null>;
  tokenByName: Map<string, UpstreamConnectToken>;
  /**
   * The ids and tokens drawn as unknown ones (default `UNKNOWN_IDS`, `UNKNOWN_TOKENS`): a world that changes
   * (test/gateway/random-lifecycle.test.ts) adds those deleted or purged, which must answer as never known.
   */
  unknownIds?: readonly string[];
  unknownTokens?: readonly string[];
}

export const CALLBACK = 'https://app.example.com/cb';
const STATUSES = ['OK', 'INVALID_CREDENTIALS', 'CONNECTION_IMPOSSIBLE', 'TEMP_DISABLED', 'DISABLED'];

/** Accounts of the world (by index, 0 to 5) given other numbers of sources and account-level tokens. */
export interface WorldOptions {
  longer?: Array<{ account: number; sources?: number; tokens?: number }>;
}

/**
 * 6 accounts with 0 to 3 sources, 0 to 4 account-level tokens each (some used), and 9 top-level tokens: unused,
 * used on an existing account, and used to create an account (a 7th). No list is longer than the 10 items the
 * cost estimate assumes, so no list is charged extra; `longer` gives accounts longer lists (the same seeding order,
 * so the world without it is as before).
 */
export function seedWorld(store: EmulatorStore, { longer = [] }: WorldOptions = {}): World {
  const ids: string[] = [];
  for (let i = 0; i < 6; i++) {
    const more = longer.find((l) => l.account === i);
    const account = store.createAccount({
      email: `user${i}@example.com`,
      first_name: i % 3 === 2 ? '' : `First${i}`,
      last_name: i % 2 === 0 ? `Last${i}` : '',
      username: `user${i}`,
      nb_messages: i * 7,
      nb_files: i % 4,
      ...(i === 4 ? { suspended: 1_600_000_000, password_expired: 1_600_000_100 } : {}),
      sources: Array.from({ length: more?.sources ?? i % 4 }, (_, s) => ({
        email: `user${i}.s${s}@mail${s}.example.com`,
        server: `imap.mail${s}.example.com`,
        status: STATUSES[(i + s) % STATUSES.length]!,
        ...(s === 1 ? { port: 143, use_ssl: false, authentication_type: 'oauth2', sync_period: '4h' } : {}),
      })),
    });
    ids.push(account.id);
    for (let t = 0; t < (more?.tokens ?? i % 5); t++) {
      const { token } = store.createConnectToken(account.id, {
        callback_url: `${CALLBACK}/${i}/${t}`,
        ...(t % 2 === 0 ? { email: `user${i}@example.com`, first_name: `T${t}` } : {}),
      });
      if (t % 2 === 1) store.useConnectToken(token, { email: `user${i}.t${t}@example.com`, server: 'imap.example.com', username: `u${i}t${t}` });
    }
  }
  for (let t = 0; t < 9; t++) {
    const { token } = store.createConnectToken(null, { callback_url: `${CALLBACK}/top/${t}`, ...(t % 3 === 0 ? { email: '@gmail.com', last_name: `L${t}` } : {}) });
    if (t === 7) store.useConnectToken(token, { email: 'newcomer@example.com', first_name: 'New', username: 'newcomer' });
    else if (t % 2 === 1) store.useConnectToken(token, { email: `user${t % 6}@example.com`, server: 'imap.example.com', username: `top${t}`, existingAccountId: ids[t % 6]! });
  }

  const accounts = store.listAccounts();
  const world: World = {
    accounts,
    byId: new Map(accounts.map((a) => [a.id, a])),
    topLevel: store.listConnectTokens(null),
    ofAccount: new Map(accounts.map((a) => [a.id, store.listConnectTokens(a.id)])),
    owner: new Map(),
    tokenByName: new Map(),
  };
  for (const t of world.topLevel) world.owner.set(t.token, null);
  for (const [id, tokens] of world.ofAccount) for (const t of tokens) world.owner.set(t.token, id);
  for (const t of [...world.topLevel, ...[...world.ofAccount.values()].flat()]) world.tokenByName.set(t.token, t);
  return world;
}

export const UNKNOWN_IDS = ['ffffffffffffffffffffffff', '0123456789abcdef01234567'];
/** A scoped caller's `accounts` claim over `accountIds`: a random share of them (none too), an unknown id beside them now and then. */
export function drawClaimedAccounts(random: Random, accountIds: readonly string[]): string[] {
  const accounts = random.subset(accountIds, random.pick([0.15, 0.35, 0.6]), false);
  if (random.chance(0.1)) accounts.push(random.pick(UNKNOWN_IDS));
  return accounts;
}

export const UNKNOWN_TOKENS = ['zzzzzzzzzzzzzzzz', 'nosuchtoken00000'];

// ---- operations -----------------------------------------------------------------------------------------------

export type TypeName =
  | 'Query'
  | 'Account'
  | 'ConnectToken'
  | 'Source'
  | 'AccountConnection'
  | 'AccountEdge'
  | 'ConnectTokenConnection'
  | 'ConnectTokenEdge'
  | 'PageInfo'
  | 'Mutation'
  | PayloadName;

/** The payloads of the writes `Generator.mutation` draws. */
type PayloadName = 'CreateAccountPayload' | 'UpdateAccountPayload' | 'DeleteAccountPayload' | 'CreateConnectTokenPayload' | 'DeleteConnectTokenPayload';

/** An argument: a literal written into the operation, or a variable's value (`Input`: an input object's literal text). */
export interface Arg {
  name: string;
  value: string | number;
  type: 'ID!' | 'Int' | 'String' | 'Input';
  variable?: string;
}

export interface Field {
  key: string;
  alias?: string;
  name: string;
  args: Arg[];
  /** The type of the field's value, for its selection. */
  type?: TypeName;
  children?: Field[];
  /** `@include(if:)` or `@skip(if:)` on every occurrence of the field, with a literal or a variable. */
  directive?: { name: 'include' | 'skip'; value: boolean; variable?: string };
}

/** Whether graphql keeps the field: what its directive says. */
export const included = (f: Field): boolean => (f.directive ? (f.directive.name === 'include') === f.directive.value : true);

/** The fields graphql resolves: those directives leave out dropped, at every level. */
export function kept(fields: Field[]): Field[] {
  return fields.filter(included).map((f) => (f.children ? { ...f, children: kept(f.children) } : f));
}

const ACCOUNT_SCALARS = ['id', 'username', 'createdAt', 'suspendedAt', 'emailAddresses', 'firstName', 'lastName', 'passwordExpiredAt', 'messageCount', 'fileCount', '__typename'];
const TOKEN_SCALARS = ['token', 'email', 'createdAt', 'used', 'usedAt', 'expiresAt', 'callbackUrl', 'firstName', 'lastName', '__typename'];
const SOURCE_SCALARS = ['label', 'email', 'username', 'server', 'port', 'useSsl', 'type', 'status', 'syncPeriod', 'authenticationType'];

/**
 * How connections are paged (none given: as before, so a seed draws the same operations): `first` drawn from 1 to
 * `largestFirst` (8 for accounts, 10 for connect tokens by default), and left out (the schema's 20) that often.
 */
export interface PageOptions {
  largestFirst?: number;
  omittedFirst?: number;
}

/** The page size a connection field asks for: its `first`, or the schema's default when left out. */
const pageSizeOf = (f: Field): number => Number(f.args.find((a) => a.name === 'first')?.value ?? DEFAULT_FIRST);
const DEFAULT_FIRST = 20;

/** A variable of the operation, with its value. */
export interface Variable {
  name: string;
  type: string;
  value: string | number | boolean;
}

/** Draws operations over `world`; aliases and variables are numbered across one operation. */
export class Generator {
  #aliases = 0;
  #accountPool: string[] = [];
  #tokenPool: string[] = [];
  #variables: Variable[] = [];
  #pages: PageOptions = {};
  #adminRoots = true;
  constructor(
    private readonly random: Random,
    private readonly world: World,
  ) {}

  /**
   * `usedTokenRoots`: that many more roots `connectToken(token)` over the world's used top-level tokens, each
   * selecting the token's account (the capability path of the authorization suite). None by default: the draws
   * of operations without them are as before, so a seed replays the same operations. `adminRoots: false`: no
   * root that needs the admin scope (`accounts`, `connectTokens`), for a scoped caller whose refused non-null
   * list would null the whole answer (the other roots' requests then a race); drawn from the same dice, so it
   * changes nothing when left out.
   */
  operation({ usedTokenRoots = 0, adminRoots = true, ...pages }: { usedTokenRoots?: number; adminRoots?: boolean } & PageOptions = {}): {
    fields: Field[];
    variables: Variable[];
  } {
    this.#pages = pages;
    this.#adminRoots = adminRoots;
    this.#aliases = 0;
    this.#variables = [];
    // A few accounts, and tokens mostly of theirs, that the operation keeps coming back to: the same resources
    // asked for from several places, and tokens asked for under the account whose list holds them.
    const accounts = [this.random.pick(this.world.accounts), this.random.pick(this.world.accounts)];
    const theirs = accounts.flatMap((a) => (this.world.ofAccount.get(a.id) ?? []).map((t) => t.token));
    this.#accountPool = accounts.map((a) => a.id);
    this.#tokenPool = [...theirs, this.random.pick([...this.world.owner.keys()]), this.random.pick(this.world.topLevel).token];
    const keys = new Set<string>();
    const fields: Field[] = [];
    const count = 1 + this.random.int(4);
    for (let i = 0; i < count; i++) {
      const root = this.#root(keys);
      fields.push(root);
      // The same root field again under another alias: the same arguments or others.
      if (this.random.chance(0.25)) fields.push(this.#again(root, keys));
    }
    const used = this.world.topLevel.filter((t) => t.used);
    for (let i = 0; i < usedTokenRoots; i++) {
      const root = this.#field(keys, 'connectToken', [this.#arg('token', this.random.pick(used).token, 'ID!')], 'ConnectToken', 3);
      const childKeys = new Set(root.children!.map((c) => c.key));
      if (!root.children!.some((c) => c.name === 'account')) root.children!.push(this.#field(childKeys, 'account', [], 'Account', 2));
      fields.push(root);
    }
    return { fields, variables: this.#variables };
  }

  /**
   * A mutation of one to three writes over the world (an account or token it names may be unknown, or gone by an
   * earlier write), each payload with a selection drawn as a query's: the write's account or token and what they
   * lead to. A method of its own, so that the draws of `operation` are as before.
   */
  mutation(): { fields: Field[]; variables: Variable[] } {
    this.#aliases = 0;
    this.#variables = [];
    const account = this.random.pick(this.world.accounts);
    this.#accountPool = [account.id];
    this.#tokenPool = [...(this.world.ofAccount.get(account.id) ?? []).map((t) => t.token), this.random.pick(this.world.topLevel).token];
    const keys = new Set<string>();
    const fields: Field[] = [];
    for (let count = 1 + this.random.int(3); fields.length < count; ) {
      const n = this.#aliases;
      const input = (text: string): Arg => ({ name: 'input', value: `{ ${text} }`, type: 'Input' });
      const callback = `callbackUrl: "${CALLBACK}/m/${n}"`;
      const write = this.random.pick(['createAccount', 'updateAccount', 'deleteAccount', 'createConnectToken', 'createAccountConnectToken', 'deleteConnectToken', 'deleteAccountConnectToken'] as const);
      const field = (args: Arg[], payload: PayloadName) => this.#field(keys, write, args, payload, 2, true);
      if (write === 'createAccount') fields.push(field([input(`email: "made${n}@example.com", firstName: "Made"`)], 'CreateAccountPayload'));
      if (write === 'updateAccount') fields.push(field([this.#arg('id', this.#accountId(), 'ID!'), input(`lastName: "Changed${n}"`)], 'UpdateAccountPayload'));
      if (write === 'deleteAccount') fields.push(field([this.#arg('id', this.#accountId(), 'ID!')], 'DeleteAccountPayload'));
      if (write === 'createConnectToken') fields.push(field([input(callback)], 'CreateConnectTokenPayload'));
      if (write === 'createAccountConnectToken') fields.push(field([this.#arg('accountId', this.#accountId(), 'ID!'), input(callback)], 'CreateConnectTokenPayload'));
      if (write === 'deleteConnectToken') fields.push(field([this.#arg('token', this.#token(), 'ID!')], 'DeleteConnectTokenPayload'));
      if (write === 'deleteAccountConnectToken') fields.push(field([this.#arg('accountId', this.#accountId(), 'ID!'), this.#arg('token', this.#token(), 'ID!')], 'DeleteConnectTokenPayload'));
    }
    return { fields, variables: this.#variables };
  }

  #root(keys: Set<string>): Field {
    const kind = this.random.pick(this.#adminRoots ? ['account', 'account', 'accounts', 'connectTokens', 'connectToken', 'connectToken'] : ['account', 'account', 'connectToken', 'connectToken']);
    if (kind === 'account') return this.#field(keys, 'account', [this.#arg('id', this.#accountId(), 'ID!')], 'Account', 3);
    if (kind === 'connectToken') return this.#field(keys, 'connectToken', [this.#arg('token', this.#token(), 'ID!')], 'ConnectToken', 3);
    const first = 1 + this.random.int(this.#pages.largestFirst ?? (kind === 'accounts' ? 8 : 10));
    const args = this.#omitsFirst() ? [] : [this.#arg('first', first, 'Int')];
    if (kind === 'accounts' && this.random.chance(0.15)) args.push(this.#emailFilter());
    // Now and then by a source status: a page that shows its accounts with those sources only (R4).
    else if (kind === 'accounts' && this.random.chance(0.35)) args.push({ name: 'filter', value: this.random.pick(STATUSES), type: 'Input' });
    return this.#field(keys, kind, args, kind === 'accounts' ? 'AccountConnection' : 'ConnectTokenConnection', 2);
  }

  /** An `accounts` filter by an address: mostly one of the world's, now and then one no account has. */
  #emailFilter(): Arg {
    const email = this.random.chance(0.8) ? this.random.pick(this.random.pick(this.world.accounts).email_addresses) : 'nobody@example.com';
    return { name: 'filter', value: email, type: 'String' };
  }

  /**
   * `field` again under a new alias, with the same arguments or new ones of the same kind, and a selection of its
   * own. An `accounts` page now and then has the same `first` under another filter (or none): a request that
   * differs from the other's by its filter alone, which must not be answered from the other's page.
   */
  #again(field: Field, keys: Set<string>): Field {
    if (field.name === 'accounts' && this.random.chance(0.4)) {
      const filtered = field.args.some((a) => a.name === 'filter');
      const args = [...field.args.filter((a) => a.name !== 'filter'), ...(filtered && this.random.chance(0.5) ? [] : [this.#emailFilter()])];
      return this.#field(keys, field.name, args, field.type!, 2, true);
    }
    const args = field.args.map((a) => {
      if (this.random.chance(0.5)) return a;
      if (a.name === 'id') return this.#arg('id', this.#accountId(), 'ID!');
      if (a.name === 'token') return this.#arg('token', this.#token(), 'ID!');
      if (a.name === 'first') return this.#arg('first', 1 + this.random.int(this.#pages.largestFirst ?? 8), 'Int');
      return a;
    });
    return this.#field(keys, field.name, args, field.type!, field.type === 'Account' || field.type === 'ConnectToken' ? 3 : 2, true);
  }

  /** A field of `type` named `name` with a fresh selection; aliased when asked, or when its name is taken. */
  #field(keys: Set<string>, name: string, args: Arg[], type: TypeName | undefined, budget: number, alias = false): Field {
    const useAlias = alias || keys.has(name) || this.random.chance(0.2);
    const key = useAlias ? `a${this.#aliases++}` : name;
    keys.add(key);
    const field: Field = { key, name, args, ...(useAlias ? { alias: key } : {}) };
    if (type) field.type = type;
    if (type && type !== 'Query') field.children = this.#selection(type, budget);
    // Now and then a directive keeps or drops the field: what the gateway reads of a selection (which loads it
    // starts ahead) must leave out what graphql leaves out.
    if (this.random.chance(0.1)) {
      const directive = { name: this.random.pick(['include', 'skip'] as const), value: this.random.chance(0.5) };
      if (!this.random.chance(0.4)) field.directive = directive;
      else {
        const variable = `v${this.#variables.length}`;
        this.#variables.push({ name: variable, type: 'Boolean!', value: directive.value });
        field.directive = { ...directive, variable };
      }
    }
    return field;
  }

  /** A selection of `type`; `budget` is how many more account/token hops it may take. */
  #selection(type: TypeName, budget: number): Field[] {
    const keys = new Set<string>();
    const scalar = (name: string): Field => this.#field(keys, name, [], undefined, 0);
    const r = this.random;
    switch (type) {
      case 'Account': {
        const fields = r.subset(ACCOUNT_SCALARS, 0.25, false).map(scalar);
        if (r.chance(0.3)) fields.push(this.#field(keys, 'sources', [], 'Source', 0));
        if (budget > 0 && r.chance(0.45)) fields.push(this.#field(keys, 'connectTokens', [], 'ConnectToken', budget - 1));
        for (let n = r.chance(0.4) ? 1 + r.int(2) : 0; n > 0 && budget > 0; n--) {
          fields.push(this.#field(keys, 'connectToken', [this.#arg('token', this.#token(), 'ID!')], 'ConnectToken', budget - 1));
        }
        if (fields.length === 0) fields.push(scalar('id'));
        return fields;
      }
      case 'ConnectToken': {
        const fields = r.subset(TOKEN_SCALARS, 0.3, false).map(scalar);
        if (budget > 0 && r.chance(0.5)) fields.push(this.#field(keys, 'account', [], 'Account', budget - 1));
        if (fields.length === 0) fields.push(scalar('token'));
        return fields;
      }
      case 'Source':
        return r.subset(SOURCE_SCALARS, 0.3).map(scalar);
      case 'AccountConnection':
      case 'ConnectTokenConnection': {
        const node = type === 'AccountConnection' ? 'Account' : 'ConnectToken';
        const fields: Field[] = [];
        const parts = r.subset(['nodes', 'edges', 'pageInfo'], 0.4);
        if (parts.includes('nodes')) fields.push(this.#field(keys, 'nodes', [], node, budget));
        if (parts.includes('edges')) fields.push(this.#field(keys, 'edges', [], type === 'AccountConnection' ? 'AccountEdge' : 'ConnectTokenEdge', budget));
        if (parts.includes('pageInfo')) fields.push(this.#field(keys, 'pageInfo', [], 'PageInfo', 0));
        return fields;
      }
      case 'AccountEdge':
        return [this.#field(keys, 'node', [], 'Account', budget)];
      case 'ConnectTokenEdge':
        return [this.#field(keys, 'node', [], 'ConnectToken', budget)];
      case 'PageInfo':
        return [scalar('hasNextPage')];
      case 'CreateAccountPayload':
      case 'UpdateAccountPayload': {
        const fields = r.subset(type === 'CreateAccountPayload' ? ['id', 'resourceUrl'] : ['success'], 0.5, false).map(scalar);
        if (r.chance(0.7)) fields.push(this.#field(keys, 'account', [], 'Account', budget));
        if (fields.length === 0) fields.push(scalar('__typename'));
        return fields;
      }
      case 'CreateConnectTokenPayload': {
        const fields = r.subset(['token', 'resourceUrl', 'browserRedirectUrl'], 0.4, false).map(scalar);
        if (r.chance(0.7)) fields.push(this.#field(keys, 'connectToken', [], 'ConnectToken', budget));
        if (fields.length === 0) fields.push(scalar('token'));
        return fields;
      }
      case 'DeleteAccountPayload':
        return r.subset(['success', 'id', '__typename'], 0.5).map(scalar);
      case 'DeleteConnectTokenPayload':
        return r.subset(['success', 'token', '__typename'], 0.5).map(scalar);
      case 'Query':
      case 'Mutation':
        throw new Error(`no nested ${type}`);
    }
  }

  /** Whether a connection leaves `first` out (its default, 20); drawn only when asked for, so other draws stay as they were. */
  #omitsFirst(): boolean {
    const p = this.#pages.omittedFirst ?? 0;
    return p > 0 && this.random.chance(p);
  }

  /** An argument, written as a literal or (a third of the time) passed as a variable. */
  #arg(name: string, value: string | number, type: 'ID!' | 'Int'): Arg {
    if (!this.random.chance(0.33)) return { name, value, type };
    const variable = `v${this.#variables.length}`;
    this.#variables.push({ name: variable, type, value });
    return { name, value, type, variable };
  }

  /** Mostly an account of the world (the same ones come back across roots), sometimes an unknown one. */
  #accountId(): string {
    if (this.random.chance(0.1)) return this.random.pick(this.world.unknownIds ?? UNKNOWN_IDS);
    return this.random.chance(0.7) ? this.random.pick(this.#accountPool) : this.random.pick(this.world.accounts).id;
  }

  /** A top-level or account-level token, used or not, or an unknown one. */
  #token(): string {
    if (this.random.chance(0.08)) return this.random.pick(this.world.unknownTokens ?? UNKNOWN_TOKENS);
    return this.random.chance(0.75) ? this.random.pick(this.#tokenPool) : this.random.pick([...this.world.owner.keys()]);
  }
}

// ---- rendering: the same fields, spread over inline and named fragments at random ---------------------------

export function render(fields: Field[], variables: Array<{ name: string; type: string }>, random: Random, operation: 'query' | 'mutation' = 'query'): string {
  const fragments = new Map<string, string>(); // definition body → name, so an identical one is spread again
  const definitions: string[] = [];
  const argText = (a: Arg): string => {
    if (a.name === 'filter') return a.type === 'Input' ? `filter: { status: ${a.value} }` : `filter: { email: ${JSON.stringify(a.value)} }`;
    if (a.type === 'Input') return `${a.name}: ${a.value}`;
    return `${a.name}: ${a.variable ? `$${a.variable}` : JSON.stringify(a.value)}`;
  };
  const fieldText = (f: Field, children: Field[] | undefined): string => {
    const args = f.args.length > 0 ? `(${f.args.map(argText).join(', ')})` : '';
    const directive = f.directive ? ` @${f.directive.name}(if: ${f.directive.variable ? `$${f.directive.variable}` : f.directive.value})` : '';
    const head = `${f.alias ? `${f.alias}: ` : ''}${f.name}${args}${directive}`;
    return children ? `${head} { ${set(children, f.type!)} }` : head;
  };
  const set = (children: Field[], type: TypeName): string => {
    // Now and then a field with several children is written twice, its children split between the two: graphql
    // merges them back into one field.
    const items: string[] = [];
    for (const f of children) {
      if (f.children && f.children.length > 1 && random.chance(0.15)) {
        const cut = 1 + random.int(f.children.length - 1);
        items.push(fieldText(f, f.children.slice(0, cut)), fieldText(f, f.children.slice(cut)));
      } else {
        items.push(fieldText(f, f.children));
      }
    }
    if (items.length === 0) return '';
    // Some of the items go into an inline fragment or a named fragment of the same type.
    const out: string[] = [];
    let i = 0;
    while (i < items.length) {
      const take = 1 + random.int(items.length - i);
      const group = items.slice(i, i + take);
      i += take;
      const how = type === 'Query' || type === 'Mutation' ? 'direct' : random.pick(['direct', 'direct', 'inline', 'named']);
      if (how === 'direct') out.push(...group);
      else if (how === 'inline') out.push(`... on ${type}${random.pick(['', '', ' @include(if: true)', ' @skip(if: false)'])} { ${group.join(' ')} }`);
      else {
        const body = `on ${type} { ${group.join(' ')} }`;
        let name = fragments.get(body);
        if (name === undefined) {
          name = `F${fragments.size}`;
          fragments.set(body, name);
          definitions.push(`fragment ${name} ${body}`);
        }
        out.push(`...${name}`);
      }
    }
    return out.join(' ');
  };
  const body = set(fields, operation === 'query' ? 'Query' : 'Mutation');
  const head = `${operation} Random${variables.length > 0 ? `(${variables.map((v) => `$${v.name}: ${v.type}`).join(', ')})` : ''}`;
  return [`${head} { ${body} }`, ...definitions].join('\n');
}

/**
 * A bound on the estimated cost, above the gateway's own (docs/limits.md: 1 a field, 10 one that may make a request,
 * lists without `first` taken as 10 items, connections as `first`): every field with a selection counted as a
 * request. Operations over it are drawn again, so that none is refused as too complex.
 */
export function costBound(fields: Field[], times = 1): number {
  let cost = 0;
  for (const f of fields) {
    if (!f.children) {
      cost += times;
      continue;
    }
    const connection = f.type === 'AccountConnection' || f.type === 'ConnectTokenConnection';
    const items = connection ? pageSizeOf(f) : f.name === 'sources' || f.name === 'connectTokens' ? 10 : 1;
    cost += 10 * times + costBound(f.children, times * items);
  }
  return cost;
}

export function depth(fields: Field[]): number {
  return Math.max(0, ...fields.map((f) => 1 + (f.children ? depth(f.children) : 0)));
}

// ---- the expectation ------------------------------------------------------------------------------------------

/*
 * Upstream routes, as the contract's schema comments name them:
 *   Query.account(id)                 GET /accounts/{id}
 *   Query.accounts(first, filter)     GET /accounts?limit={first+1, at most 100}&offset=0[&email=…]   (first + 1: hasNextPage; P1)
 *   Query.connectToken(token)         GET /connect_tokens/{token}
 *   Query.connectTokens(first)        GET /connect_tokens   (the whole list, paged by the gateway)
 *   Account.connectTokens             GET /accounts/{id}/connect_tokens
 *   Account.connectToken(token)       GET /accounts/{id}/connect_tokens/{token}
 *   ConnectToken.account              GET /accounts/{id}, only for a field the token's embed lacks
 *
 * What is answered without a request of its own:
 *   R1. An account's scalars and sources come with the account: from GET /accounts/{id}, from a page of
 *       GET /accounts, or, under a used token, from the account the token embeds (id, createdAt, suspendedAt,
 *       emailAddresses, firstName, lastName, sources). Under a token, username, passwordExpiredAt, messageCount
 *       and fileCount load the full account (ConnectToken.account's description).
 *   R2. An unused token's account is null: nothing is asked.
 *   R3. Each resource once per operation, however many fields, aliases or roots ask for it.
 *   R4. A list primes what it holds for the rest of the operation: a page of GET /accounts (unfiltered by
 *       source status) primes each account it holds, the extra one asked for hasNextPage included; a token
 *       list primes its tokens under their owner (top-level ones as top-level only). A load reached only after
 *       such a list was answered (the list is on its path) is answered from it. A load started in the same
 *       pass as the list (before any answer: the root fields, or siblings resolved from the same answer) is
 *       requested. A load that may start before or after an unrelated list answers may go either way: it is
 *       allowed once or not at all (independent requests answer in any order). This race is the gateway's
 *       deliberate choice (batching.test: a root account(id) beside a page costs its request whichever answers
 *       first), followed here.
 *   R5. Query.account(id) and a used token's account start their connectTokens / connectToken(token) loads
 *       beside the account's own (by the id they know): they are in the same pass as the account field.
 *       Those of an unknown account are made while the answers are held (random-operations.test), and fail
 *       unseen: only the account's NOT_FOUND is reported; with answers left free, the account's NOT_FOUND may end
 *       the operation before they go out, and they are dropped unsent (random-lifecycle.test takes either).
 *   R6. Lists are never primed by anything: each is requested once.
 *   R7. Independent requests go out together: a load waits only for the answer it follows (its list's, its
 *       token's, the account or token its path was reached through), so each wave of requests is all out
 *       before any of it is answered. Checked when no load of the operation may go either way (R4).
 *   R8. A used top-level token whose account was deleted since (a world that changes, random-lifecycle.test.ts)
 *       embeds it as it was: see Expecter's #goneAccount.
 * The data: upstream `""` is no value (null), Unix seconds are ISO strings, `0`/`false` null but in createdAt.
 *
 * The caller's access (docs/auth.md, CONTRACT.md's "gateway's own auth"), for a valid token; an admin reaches all:
 *   A1. Query.accounts and Query.connectTokens need the admin scope; Query.account(id) needs `id` in scope,
 *       refused before its id is looked up (an unknown id out of scope is FORBIDDEN, not NOT_FOUND).
 *   A2. Query.connectToken(token) needs a valid token alone, and so does that token's `account` (its own fields
 *       and sources, the full account's load included): knowing the token is the capability.
 *   A3. Account.connectTokens and Account.connectToken(token) need the account in scope however it was reached
 *       (under a token's account too). Account.connectTokens is non-null: refused, it nulls its account; the
 *       account's other refused fields are reported beside it.
 *   A4. A refused field makes no request, nor do the loads started ahead for it (R5's beside an account out of
 *       scope).
 */

/** What a caller with a valid token may reach: everything (`admin`), or the accounts of its `accounts` claim. */
export interface Access {
  admin: boolean;
  accounts: ReadonlySet<string>;
}

const ADMIN_ACCESS: Access = { admin: true, accounts: new Set() };

interface Need {
  resource: string;
  /** The pass (the upstream answer, or the root) in which the load starts. */
  pass: string;
  /** The lists answered before this load on its path (R4). */
  after: ReadonlySet<string>;
  /** What the load waits for (null: nothing, a root field). */
  trigger: Trigger | null;
  /** The item a list primes, for item loads (`account:{id}` or `token:{owner}:{token}`). */
  item?: string;
}

/** The answer a pass follows: a list's, or an item's (which may come from a list that primed it: R4). */
interface Trigger {
  resource: string;
  parent: Trigger | null;
  item: boolean;
}

interface At {
  pass: string;
  after: ReadonlySet<string>;
  trigger: Trigger | null;
}

export interface Expectation {
  data: Record<string, unknown>;
  errors: string[];
  /** Reported or not, either is right (R8); none but in a world with deleted accounts. */
  optionalErrors: string[];
  required: string[];
  optional: string[];
  /** The requests out once the answers of `answered` are in, when that is known (R4: no optional one). */
  waves?: (answered: ReadonlySet<string>) => Set<string>;
}

const iso = (seconds: number | false | undefined): string | null => (seconds ? new Date(seconds * 1000).toISOString() : null);
/** A text field as the gateway answers it: empty or absent is null. */
export const orNull = (value: string | undefined | null): string | null => (value === undefined || value === null || value === '' ? null : value);

export class Expecter {
  readonly needs: Need[] = [];
  /** Items each list (resource) primes. */
  readonly primes = new Map<string, Set<string>>();
  readonly errors: string[] = [];
  /** Errors that may be reported or not (R8). */
  readonly optionalErrors: string[] = [];
  #passes = 0;

  constructor(
    private readonly world: World,
    private readonly access: Access = ADMIN_ACCESS,
  ) {}

  #inScope(id: string): boolean {
    return this.access.admin || this.access.accounts.has(id);
  }

  run(fields: Field[]): Expectation {
    const data: Record<string, unknown> = {};
    const root: At = { pass: 'root', after: new Set<string>(), trigger: null };
    for (const f of fields) data[f.key] = this.#root(f, root);
    return { data, errors: this.errors.sort(), optionalErrors: this.optionalErrors.sort(), ...this.#classify() };
  }

  #need(resource: string, at: At, item?: string): void {
    this.needs.push({ resource, pass: at.pass, after: at.after, trigger: at.trigger, ...(item ? { item } : {}) });
  }

  /** Where what depends on `resource`'s answer resolves: the pass of its answer, after it if a list (R4). */
  #answered(resource: string, at: At, kind: 'list' | 'item'): At {
    return {
      pass: `${resource}#${this.#passes++}`,
      after: kind === 'list' ? new Set([...at.after, resource]) : at.after,
      trigger: { resource, parent: at.trigger, item: kind === 'item' },
    };
  }

  #error(path: Array<string | number>, code: string): null {
    this.errors.push(`${path.join('.')} ${code}`);
    return null;
  }

  #root(f: Field, at: At): unknown {
    const arg = (name: string) => f.args.find((a) => a.name === name)?.value;
    switch (f.name) {
      case 'account': {
        const id = String(arg('id'));
        if (!this.#inScope(id)) return this.#error([f.key], 'FORBIDDEN'); // A1
        const resource = `GET /accounts/${id}`;
        this.#need(resource, at, `account:${id}`);
        this.#tokenLoads(id, f.children!, at); // R5
        const account = this.world.byId.get(id);
        if (!account) return this.#error([f.key], 'NOT_FOUND');
        return this.#account(account, f.children!, [f.key], at);
      }
      case 'accounts': {
        if (!this.access.admin) return this.#error([f.key], 'FORBIDDEN'); // A1
        const first = pageSizeOf(f);
        const filter = f.args.find((a) => a.name === 'filter');
        const status = filter?.type === 'Input' ? String(filter.value) : undefined;
        const email = status === undefined ? (filter?.value as string | undefined) : undefined;
        const resource = accountsPageRequest(first, 0, { email, status }); // P1
        this.#need(resource, at);
        const all = this.world.accounts
          .filter((a) => email === undefined || a.email_addresses.some((e) => e.toLowerCase() === email.toLowerCase()))
          .filter((a) => status === undefined || a.sources.some((s) => s.status === status))
          .map((a) => (status === undefined ? a : { ...a, sources: a.sources.filter((s) => s.status === status) }));
        // R4: a page filtered by source status primes nothing: its accounts show only some of their sources.
        if (status === undefined) this.#prime(resource, all.slice(0, accountsPageLimit(first)).map((a) => `account:${a.id}`));
        const next = this.#answered(resource, at, 'list');
        const page = pageAt({ list: 'accounts', filter: { email, status } }, all, 0, first); // P2
        return this.#connection(f, page.items, page.hasNextPage, [f.key], (a, sel, path) => this.#account(a, sel, path, next));
      }
      case 'connectToken': {
        const token = String(arg('token'));
        const resource = `GET /connect_tokens/${token}`;
        this.#need(resource, at, `token::${token}`);
        if (!this.world.owner.has(token) || this.world.owner.get(token) !== null) return this.#error([f.key], 'NOT_FOUND');
        return this.#token(this.world.tokenByName.get(token)!, f.children!, [f.key], this.#answered(resource, at, 'item'));
      }
      case 'connectTokens': {
        if (!this.access.admin) return this.#error([f.key], 'FORBIDDEN'); // A1
        const first = pageSizeOf(f);
        const resource = 'GET /connect_tokens';
        this.#need(resource, at);
        this.#prime(resource, this.world.topLevel.map((t) => `token::${t.token}`));
        const next = this.#answered(resource, at, 'list');
        const page = pageAt({ list: 'connectTokens' }, this.world.topLevel, 0, first); // P3
        return this.#connection(f, page.items, page.hasNextPage, [f.key], (t, sel, path) => this.#token(t, sel, path, next));
      }
    }
    throw new Error(`unknown root ${f.name}`);
  }

  #prime(list: string, items: string[]): void {
    const set = this.primes.get(list) ?? new Set<string>();
    for (const item of items) set.add(item);
    this.primes.set(list, set);
  }

  #connection<T>(
    f: Field,
    items: T[],
    hasNextPage: boolean,
    path: Array<string | number>,
    node: (item: T, selection: Field[], path: Array<string | number>) => unknown,
  ): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const c of f.children!) {
      if (c.name === 'nodes') out[c.key] = items.map((item, i) => node(item, c.children!, [...path, c.key, i]));
      else if (c.name === 'edges') {
        out[c.key] = items.map((item, i) => {
          const edge: Record<string, unknown> = {};
          for (const e of c.children!) edge[e.key] = node(item, e.children!, [...path, c.key, i, e.key]);
          return edge;
        });
      } else if (c.name === 'pageInfo') out[c.key] = Object.fromEntries(c.children!.map((p) => [p.key, hasNextPage]));
    }
    return out;
  }

  /** The loads an account field starts for its token fields by the account's id (R5), in the pass `at`. */
  #tokenLoads(id: string, selection: Field[], at: At): void {
    if (!this.#inScope(id)) return; // A4
    for (const f of selection) {
      if (f.name === 'connectTokens') this.#tokenList(id, at);
      if (f.name === 'connectToken') {
        const token = String(f.args[0]!.value);
        this.#need(`GET /accounts/${id}/connect_tokens/${token}`, at, `token:${id}:${token}`);
      }
    }
  }

  #tokenList(id: string, at: At): string {
    const resource = `GET /accounts/${id}/connect_tokens`;
    this.#need(resource, at);
    this.#prime(resource, (this.world.ofAccount.get(id) ?? []).map((t) => `token:${id}:${t.token}`));
    return resource;
  }

  /**
   * An account's selection. `tokensAt`: where its token fields' loads start (R5: beside the account's own
   * load when reached by id or through a token, else where the account was listed). Its other fields load nothing.
   * Null when a token field refused out of scope nulls it (A3).
   */
  #account(
    account: UpstreamAccount,
    selection: Field[],
    path: Array<string | number>,
    tokensAt: At,
  ): Record<string, unknown> | null {
    const out: Record<string, unknown> = {};
    let nulled = false;
    for (const f of selection) {
      const here = [...path, f.key];
      switch (f.name) {
        case '__typename': out[f.key] = 'Account'; break;
        case 'id': out[f.key] = account.id; break;
        case 'username': out[f.key] = orNull(account.username); break;
        case 'createdAt': out[f.key] = iso(account.created) ?? new Date(0).toISOString(); break;
        case 'suspendedAt': out[f.key] = iso(account.suspended); break;
        case 'emailAddresses': out[f.key] = account.email_addresses; break;
        case 'firstName': out[f.key] = orNull(account.first_name); break;
        case 'lastName': out[f.key] = orNull(account.last_name); break;
        case 'passwordExpiredAt': out[f.key] = iso(account.password_expired); break;
        case 'messageCount': out[f.key] = account.nb_messages ?? null; break;
        case 'fileCount': out[f.key] = account.nb_files ?? null; break;
        case 'sources': out[f.key] = account.sources.map((s) => source(s, f.children!)); break;
        case 'connectTokens': {
          if (!this.#inScope(account.id)) {
            nulled = true;
            this.#error(here, 'FORBIDDEN'); // A3: non-null, so its account is null
            break;
          }
          const list = this.#tokenList(account.id, tokensAt);
          const next = this.#answered(list, tokensAt, 'list');
          out[f.key] = (this.world.ofAccount.get(account.id) ?? []).map((t, i) => this.#token(t, f.children!, [...here, i], next));
          break;
        }
        case 'connectToken': {
          if (!this.#inScope(account.id)) {
            out[f.key] = this.#error(here, 'FORBIDDEN'); // A3
            break;
          }
          const token = String(f.args[0]!.value);
          const resource = `GET /accounts/${account.id}/connect_tokens/${token}`;
          this.#need(resource, tokensAt, `token:${account.id}:${token}`);
          const found = this.world.owner.get(token) === account.id ? this.world.tokenByName.get(token)! : undefined;
          out[f.key] = found ? this.#token(found, f.children!, here, this.#answered(resource, tokensAt, 'item')) : this.#error(here, 'NOT_FOUND');
          break;
        }
        default: throw new Error(`unknown Account field ${f.name}`);
      }
    }
    return nulled ? null : out;
  }

  /**
   * R8. The account a used top-level token created, deleted since: the token goes on embedding it as it last was,
   * so the embed's fields answer from it (no request); each field only the full account has fails NOT_FOUND with
   * its load (made once), and so do its token fields (each its own request). `connectTokens`, non-null, then
   * nulls the account: the errors of its siblings may be reported or not (graphql-js answers once the null is
   * known, whichever of the other loads has failed by then), so they are optional.
   */
  #goneAccount(account: UpstreamEmbeddedAccount, selection: Field[], path: Array<string | number>, at: At): Record<string, unknown> | null {
    const out: Record<string, unknown> = {};
    const errors: string[] = [];
    let nulled = false;
    const notFound = (here: Array<string | number>, resource: string, item?: string) => {
      this.#need(resource, at, item);
      errors.push(`${here.join('.')} NOT_FOUND`);
      return null;
    };
    this.#tokenLoads(account.id, selection, at);
    for (const f of selection) {
      const here = [...path, f.key];
      switch (f.name) {
        case '__typename': out[f.key] = 'Account'; break;
        case 'id': out[f.key] = account.id; break;
        case 'createdAt': out[f.key] = iso(account.created) ?? new Date(0).toISOString(); break;
        case 'suspendedAt': out[f.key] = iso(account.suspended); break;
        case 'emailAddresses': out[f.key] = account.email_addresses; break;
        case 'firstName': out[f.key] = orNull(account.first_name); break;
        case 'lastName': out[f.key] = orNull(account.last_name); break;
        case 'sources': out[f.key] = account.sources.map((s) => source(s, f.children!)); break;
        case 'username':
        case 'passwordExpiredAt':
        case 'messageCount':
        case 'fileCount':
          out[f.key] = notFound(here, `GET /accounts/${account.id}`, `account:${account.id}`);
          break;
        case 'connectTokens':
          nulled = true;
          notFound(here, `GET /accounts/${account.id}/connect_tokens`);
          break;
        case 'connectToken': {
          const token = String(f.args[0]!.value);
          out[f.key] = notFound(here, `GET /accounts/${account.id}/connect_tokens/${token}`, `token:${account.id}:${token}`);
          break;
        }
        default: throw new Error(`unknown Account field ${f.name}`);
      }
    }
    if (!nulled) {
      this.errors.push(...errors);
      return out;
    }
    // The selection holds one connectTokens (Generator draws it once): its error is what nulls the account.
    const nulling = `${[...path, selection.find((f) => f.name === 'connectTokens')!.key].join('.')} NOT_FOUND`;
    this.errors.push(nulling);
    this.optionalErrors.push(...errors.filter((e) => e !== nulling));
    return null;
  }

  #token(token: UpstreamConnectToken, selection: Field[], path: Array<string | number>, at: At): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const f of selection) {
      switch (f.name) {
        case '__typename': out[f.key] = 'ConnectToken'; break;
        case 'token': out[f.key] = token.token; break;
        case 'email': out[f.key] = orNull(token.email); break;
        case 'createdAt': out[f.key] = iso(token.created) ?? new Date(0).toISOString(); break;
        case 'used': out[f.key] = Boolean(token.used); break;
        case 'usedAt': out[f.key] = iso(token.used); break;
        case 'expiresAt': out[f.key] = iso(token.expires); break;
        case 'callbackUrl': out[f.key] = token.callback_url; break;
        case 'firstName': out[f.key] = orNull(token.first_name); break;
        case 'lastName': out[f.key] = orNull(token.last_name); break;
        case 'account': {
          if (!token.used || !token.account) {
            out[f.key] = null; // R2
            break;
          }
          const account = this.world.byId.get(token.account.id);
          if (!account) {
            out[f.key] = this.#goneAccount(token.account as UpstreamEmbeddedAccount, f.children!, [...path, f.key], at);
            break;
          }
          // R1: only a field the embed lacks loads the account (in the token's pass: the token is in by then).
          if (f.children!.some((c) => FULL_ONLY.has(c.name))) this.#need(`GET /accounts/${account.id}`, at, `account:${account.id}`);
          this.#tokenLoads(account.id, f.children!, at); // R5
          out[f.key] = this.#account(account, f.children!, [...path, f.key], at);
          break;
        }
        default: throw new Error(`unknown ConnectToken field ${f.name}`);
      }
    }
    return out;
  }

  /**
   * R3, R4, R6: which resources must be requested once, and which may be (once) or not; and, when every one is
   * known to be requested or not, the waves they go out in: each once the answers it follows are in.
   */
  #classify(): Pick<Expectation, 'required' | 'optional' | 'waves'> {
    const startPasses = new Map<string, Set<string>>();
    for (const n of this.needs) {
      const passes = startPasses.get(n.resource) ?? new Set<string>();
      passes.add(n.pass);
      startPasses.set(n.resource, passes);
    }
    const verdictOf = new Map<Need, Verdict>();
    const verdicts = new Map<string, Set<Verdict>>();
    for (const n of this.needs) {
      let verdict: Verdict = 'required';
      if (n.item) {
        const primers = [...this.primes].filter(([, items]) => items.has(n.item!)).map(([list]) => list);
        if (primers.some((list) => n.after.has(list))) verdict = 'free';
        // A list started only in this load's own pass cannot have been answered before it.
        else if (primers.some((list) => [...startPasses.get(list)!].some((p) => p !== n.pass))) verdict = 'optional';
      }
      verdictOf.set(n, verdict);
      verdicts.set(n.resource, (verdicts.get(n.resource) ?? new Set()).add(verdict));
    }
    const overall = (resource: string): Verdict => {
      const all = verdicts.get(resource)!;
      return all.has('required') ? 'required' : all.has('optional') ? 'optional' : 'free';
    };
    const pick = (v: Verdict) => [...verdicts.keys()].filter((r) => overall(r) === v).sort();
    const required = pick('required');
    const optional = pick('optional');

    // The answer a load waits for: an item's own when requested, the one it was primed from when free (from a
    // cache, in the same pass), unknown when it may go either way.
    const waitsFor = (trigger: Trigger | null): string | null | undefined => {
      if (trigger === null || !trigger.item) return trigger?.resource ?? null;
      const all = verdicts.get(trigger.resource)!;
      if (all.size === 1 && all.has('required')) return trigger.resource;
      if (all.size === 1 && all.has('free')) return waitsFor(trigger.parent);
      return undefined;
    };
    const requested = this.needs.filter((n) => overall(n.resource) === 'required');
    const follows = requested.map((n) => ({ resource: n.resource, after: waitsFor(n.trigger), free: verdictOf.get(n) === 'free' }));
    if (optional.length > 0 || follows.some((f) => f.after === undefined || f.free)) return { required, optional };
    const waves = (answered: ReadonlySet<string>): Set<string> =>
      new Set(follows.filter((f) => f.after === null || answered.has(f.after!)).map((f) => f.resource));
    return { required, optional, waves };
  }
}

type Verdict = 'required' | 'optional' | 'free';

const FULL_ONLY = new Set(['username', 'passwordExpiredAt', 'messageCount', 'fileCount']);

/** Every field of a source as the gateway answers it (the schema's names; empty strings and absent values null). */
export function sourceView(s: UpstreamSource): Record<string, unknown> {
  return {
    label: s.label,
    email: orNull(s.email),
    username: orNull(s.username),
    server: orNull(s.server),
    port: s.port ?? null,
    useSsl: s.use_ssl ?? null,
    type: orNull(s.type),
    status: s.status ?? null,
    syncPeriod: orNull(s.sync_period),
    authenticationType: orNull(s.authentication_type),
  };
}

function source(s: UpstreamSource, selection: Field[]): Record<string, unknown> {
  const values = sourceView(s);
  return Object.fromEntries(selection.map((f) => [f.key, values[f.name]]));
}

/** A query string with the OAuth parameters left out and the rest sorted, so that two spellings compare equal. */
export function sortedQuery(params: URLSearchParams): string {
  const pairs = [...params].filter(([k]) => !k.startsWith('oauth_')).sort(([a], [b]) => a.localeCompare(b));
  return new URLSearchParams(pairs).toString();
}


export function errorsOf(response: GraphQLResponse): string[] {
  return (response.body.errors ?? []).map((e) => `${(e.path ?? []).join('.')} ${String(e.extensions?.['code'])}`).sort();
}

// ---- paging with cursors --------------------------------------------------------------------------------------

/*
 * Pages walked with cursors (random-operations.test.ts' paging walks), from CONTRACT.md's "Pagination" and
 * schema comments, docs/errors.md's BAD_USER_INPUT row and the schema's descriptions of `accounts`,
 * `connectTokens`, their edges and PageInfo (what a client reads in the IDE); nothing here is read off the
 * resolvers. The upstream's list is the emulator's own, read from its store when the page is asked for.
 *   P1. Query.accounts(first, after, filter) makes one request, GET /accounts?limit={l}&offset={o}[&email=…]
 *       [&status=…][&status_ok=1|0]: l = first + 1 (to know hasNextPage), but at most the upstream's 100; o = 0
 *       without a cursor, else one past the position its edge had: "the upstream pages by position" (accounts
 *       deleted before a cursor meanwhile make the next page skip as many).
 *   P2. An accounts page is the first `first` accounts answered; hasNextPage: more than `first` came back, or,
 *       at first: 100, a full page (the next may turn out empty).
 *   P3. Query.connectTokens(first, after) makes one request, GET /connect_tokens (the upstream has no paging
 *       for this list: the gateway fetches it once and pages over it). An edge's cursor is passed "to continue
 *       after this token": the page starts just after that token in the list as it is now; hasNextPage: tokens
 *       follow the page. Once that token is gone meanwhile, the page starts at the first token created in its
 *       second or later (the list is oldest first; connectTokens' description): those of its second already shown
 *       come again, none is skipped.
 *   P4. endCursor is the last edge's cursor, startCursor the first's, both null on an empty page; hasPreviousPage
 *       says the page was asked for with `after` and starts past the list's first item (PageInfo's description).
 *   P5. A cursor is good only for the list and filter that wrote it: on another, BAD_USER_INPUT naming `after`,
 *       before (so without) any upstream request.
 */

/** An `accounts` filter as paged: the upstream's statuses only (`UNKNOWN` is refused, not a filter). */
export interface PagingFilter {
  email?: string;
  status?: string;
  statusOk?: boolean;
}

/** A list walked with cursors: `accounts` under a filter (none: unfiltered), or the top-level `connectTokens`. */
export type PagedList = { list: 'accounts'; filter: PagingFilter } | { list: 'connectTokens' };

/** The same for the same list and filter values, whatever the order they were written in (P5). */
export function pagedListKey(paged: PagedList): string {
  if (paged.list === 'connectTokens') return 'connectTokens';
  const { email, status, statusOk } = paged.filter;
  return `accounts ${JSON.stringify({ email, status, statusOk })}`;
}

/** The upstream's statuses (contextio-2.0.md), each a SourceStatus of the same name. */
export const UPSTREAM_STATUSES = ['OK', 'INVALID_CREDENTIALS', 'CONNECTION_IMPOSSIBLE', 'NO_ACCESS_TO_ALL_MAIL', 'TEMP_DISABLED', 'DISABLED'] as const;

/** P1: how many accounts a page of `first` asks the upstream for: one more, to know whether another follows, but at most its 100. */
const accountsPageLimit = (first: number): number => Math.min(first + 1, 100);

/** P1: the request an accounts page makes, `offset` its first item's position. */
export function accountsPageRequest(first: number, offset: number, filter: PagingFilter): string {
  const query = new URLSearchParams({ limit: String(accountsPageLimit(first)), offset: String(offset) });
  if (filter.email !== undefined) query.set('email', filter.email);
  if (filter.status !== undefined) query.set('status', filter.status);
  if (filter.statusOk !== undefined) query.set('status_ok', filter.statusOk ? '1' : '0');
  return `GET /accounts?${sortedQuery(query)}`;
}

/** P2 and P3: the items of a page starting at `offset` of `list`, and whether another page follows. */
export function pageAt<T>(paged: PagedList, list: readonly T[], offset: number, first: number): { items: T[]; hasNextPage: boolean } {
  if (paged.list === 'connectTokens') return { items: list.slice(offset, offset + first), hasNextPage: list.length > offset + first };
  const fetched = list.slice(offset, offset + accountsPageLimit(first));
  return { items: fetched.slice(0, first), hasNextPage: fetched.length > first || (first === 100 && fetched.length === 100) };
}

/** An account of a page as the walks select it: `id emailAddresses sources { label status }`. */
export const pagedAccountView = (a: UpstreamAccount) => ({ id: a.id, emailAddresses: a.email_addresses, sources: a.sources.map((s) => ({ label: s.label, status: s.status })) });
/** A connect token of a page as the walks select it: `token createdAt`. */
export const pagedTokenView = (t: UpstreamConnectToken) => ({ token: t.token, createdAt: iso(t.created) });

/** The addresses a paging world's accounts share, so that an email filter may hold several pages. */
export const SHARED_ADDRESSES = ['pager0@example.com', 'pager+tag@example.com', 'Mixed.Case@Example.com'];

/**
 * A world to page through, seeded straight into the emulator's store from `random` (its own draws, so the other
 * worlds' seeds draw as before): 40 to 259 accounts (a third with a shared address; 0 to 3 sources of random
 * statuses each) and 20 to 219 top-level connect tokens, unused, created in that order from `firstSecond` on,
 * several in one second now and then, or all of them in one. Returns the next second to create at.
 */
export function seedPagingWorld(store: EmulatorStore, random: Random, firstSecond: number): number {
  let second = firstSecond;
  const accounts = 40 + random.int(220);
  for (let i = 0; i < accounts; i++) second = createPagingAccount(store, random, second, `paged${i}@example.com`);
  const tokens = 20 + random.int(200);
  // Now and then all in one second, as a script making many at once does: a cursor then names its token among them.
  const burst = random.chance(0.25);
  for (let i = 0; i < tokens; i++) second = createPagingToken(store, random, second, burst);
  return second + 1;
}

/** Creates an account at `second` or the next (a third with a shared address, else `ownAddress`); returns its second. */
export function createPagingAccount(store: EmulatorStore, random: Random, second: number, ownAddress: string): number {
  const created = second + random.int(2);
  const email = random.chance(0.35) ? random.pick(SHARED_ADDRESSES) : ownAddress;
  const sources = Array.from({ length: random.int(4) }, (_, s) => ({ email: `s${s}.${email}`, server: 'imap.example.com', status: random.pick(UPSTREAM_STATUSES) }));
  store.createAccount({ email, created, sources });
  return created;
}

/** Creates an unused top-level connect token at `second` (`sameSecond`) or at it or the next; returns its second. */
export function createPagingToken(store: EmulatorStore, random: Random, second: number, sameSecond = false): number {
  const created = sameSecond ? second : second + random.int(2);
  store.createConnectToken(null, { callback_url: `${CALLBACK}/paged`, created });
  return created;
}
