import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { getNamedType, isLeafType, isNonNullType, isObjectType, type GraphQLField, type GraphQLObjectType } from 'graphql';
import { FULL_ACCOUNT_FIELDS, UPSTREAM_FIELDS, WRITTEN_ACCOUNT_FIELDS } from '../../src/limits/index.ts';
import { buildSchema } from '../../src/graphql/schema.ts';
import { DEFAULT_PAGE_SIZE } from '../../src/graphql/schema-shape.ts';
import { startStack, type Stack } from '../helpers/stack.ts';

/**
 * The cost estimate weighs fields by name (`UPSTREAM_FIELDS`, `FULL_ACCOUNT_FIELDS`): a field that makes an
 * upstream request but is missing from those lists would let an operation past `MAX_QUERY_COST` with more
 * requests than it is charged for. This walks the whole schema instead of a list: every field of every
 * object type, selected through the gateway against the emulator, must make an upstream request exactly
 * when the estimate says it does. A field added to the schema is probed without anyone adding it here.
 */

/** What the required arguments name: the demo seed's Ada, her used connect token, and one made per probe. */
interface Fixture {
  account: string;
  /** Used: its account is the embed a used token carries, the case FULL_ACCOUNT_FIELDS is about. */
  usedToken: string;
  unusedToken: string;
  /** An account-level token of `account` (the demo seed has none for the account its used token made). */
  accountToken: string;
}
const CALLBACK = 'http://localhost:3000/connected';
/** Required arguments by `Type.field`. */
const ARGUMENTS: Record<string, (f: Fixture) => string> = {
  'Query.account': (f) => `id: "${f.account}"`,
  'Query.connectToken': (f) => `token: "${f.usedToken}"`,
  'Account.connectToken': (f) => `token: "${f.accountToken}"`,
  'Mutation.createAccount': () => 'input: { email: "probe@example.com" }',
  'Mutation.updateAccount': (f) => `id: "${f.account}", input: { firstName: "Probe" }`,
  'Mutation.deleteAccount': (f) => `id: "${f.account}"`,
  'Mutation.createConnectToken': () => `input: { callbackUrl: "${CALLBACK}" }`,
  'Mutation.createAccountConnectToken': (f) => `accountId: "${f.account}", input: { callbackUrl: "${CALLBACK}" }`,
  'Mutation.deleteConnectToken': (f) => `token: "${f.unusedToken}"`,
  'Mutation.deleteAccountConnectToken': (f) => `accountId: "${f.account}", token: "${f.accountToken}"`,
};
/** The one field whose value is an account embedded in its parent rather than loaded by id. */
const EMBEDDING_FIELD = 'ConnectToken.account';

/** A field as selected: its text once the fixture is known. */
type Selected = (f: Fixture) => string;

interface Probe {
  operation: 'query' | 'mutation';
  /** The fields leading to `type`, arguments included. */
  path: Selected[];
  type: GraphQLObjectType;
  /** Whether `type` is reached through an embedded account (see EMBEDDING_FIELD). */
  embedded: boolean;
}

const schema = buildSchema();

/** A type as a probe reaches it: the embedded account is probed apart from the account loaded by id. */
const probeKey = (probe: Probe) => `${probe.type.name}${probe.embedded ? ' (embedded)' : ''}`;

const needsArguments = (field: GraphQLField<unknown, unknown>) => field.args.some((a) => isNonNullType(a.type) && a.defaultValue === undefined);

function fieldText(type: GraphQLObjectType, field: GraphQLField<unknown, unknown>): Selected {
  const name = `${type.name}.${field.name}`;
  if (!needsArguments(field)) return () => field.name;
  const args = ARGUMENTS[name];
  assert.ok(args, `${name} needs arguments: add values to ARGUMENTS`);
  return (f) => `${field.name}(${args(f)})`;
}

/**
 * The cheapest selection under a field of this type: a leaf that costs nothing where there is one, else the
 * same one level down, so that the field's own cost is what is measured.
 */
function cheapestSelection(type: GraphQLObjectType): string {
  const fields = Object.values(type.getFields()).filter((f) => !needsArguments(f));
  const leaf = fields.find((f) => isLeafType(getNamedType(f.type)) && !FULL_ACCOUNT_FIELDS.has(`${type.name}.${f.name}`));
  if (leaf) return leaf.name;
  const object = fields.find((f) => isObjectType(getNamedType(f.type)))!;
  return `${object.name} { ${cheapestSelection(getNamedType(object.type) as GraphQLObjectType)} }`;
}

function selectionOf(type: GraphQLObjectType, field: GraphQLField<unknown, unknown>): Selected {
  const named = getNamedType(field.type);
  const text = fieldText(type, field);
  return isObjectType(named) ? (f) => `${text(f)} { ${cheapestSelection(named)} }` : text;
}

/** Every object type, reached by the first path from a root (breadth first), the embedded account as well. */
function probes(): Probe[] {
  const found: Probe[] = [];
  const seen = new Set<string>();
  const queue: Probe[] = [];
  for (const operation of ['query', 'mutation'] as const) {
    const root = operation === 'query' ? schema.getQueryType()! : schema.getMutationType()!;
    queue.push({ operation, path: [], type: root, embedded: false });
  }
  while (queue.length > 0) {
    const probe = queue.shift()!;
    const key = probeKey(probe);
    if (seen.has(key)) continue;
    seen.add(key);
    found.push(probe);
    for (const field of Object.values(probe.type.getFields())) {
      const named = getNamedType(field.type);
      if (!isObjectType(named)) continue;
      const embedded = probe.embedded || `${probe.type.name}.${field.name}` === EMBEDDING_FIELD;
      queue.push({ operation: probe.operation, path: [...probe.path, fieldText(probe.type, field)], type: named, embedded });
    }
  }
  return found;
}

/**
 * What the estimate charges a request for, the field selected with `cheapestSelection` (an account's id, which
 * a written account's id answers) or, with `accountData`, with a field an account's id does not answer.
 */
function chargedUpstream(probe: Probe, field: string, accountData = false): boolean {
  const name = `${probe.type.name}.${field}`;
  return (
    probe.type === schema.getMutationType() ||
    UPSTREAM_FIELDS.has(name) ||
    (probe.embedded && FULL_ACCOUNT_FIELDS.has(name)) ||
    (accountData && WRITTEN_ACCOUNT_FIELDS.has(name))
  );
}

describe('the schema facts the resolvers and the estimate share', () => {
  it('has DEFAULT_PAGE_SIZE as the default of every connection’s first', () => {
    const schema = buildSchema();
    const defaults: string[] = [];
    for (const type of Object.values(schema.getTypeMap())) {
      if (!isObjectType(type) || type.name.startsWith('__')) continue;
      for (const field of Object.values(type.getFields())) {
        const first = field.args.find((arg) => arg.name === 'first');
        if (first) defaults.push(`${type.name}.${field.name}: ${String(first.defaultValue)}`);
      }
    }
    assert.ok(defaults.length > 0, 'no connection found');
    assert.deepEqual(defaults.filter((entry) => !entry.endsWith(`: ${DEFAULT_PAGE_SIZE}`)), []);
  });
});

describe('the cost estimate', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ emulator: { seed: 'demo' } });
  });
  after(() => stack.close());

  /** Upstream requests one operation makes on a freshly seeded emulator; it must answer without errors. */
  async function requestsOf(probe: Probe, selection: Selected): Promise<number> {
    const { store } = stack.emulator;
    store.reset('demo');
    const account = '52daabefcea6f9c35a4a0997';
    const fixture: Fixture = {
      account,
      usedToken: 'adaconnected0001',
      unusedToken: 'demounused000001',
      accountToken: store.createConnectToken(account, { callback_url: CALLBACK }).token,
    };
    stack.upstreamCalls();
    const path = probe.path.map((p) => `${p(fixture)} { `).join('');
    const document = `${probe.operation} { ${path}${selection(fixture)}${' }'.repeat(probe.path.length)} }`;
    const res = await stack.gql(document);
    assert.deepEqual(res.body.errors, undefined, `${document} answered errors`);
    return stack.upstreamCalls().length;
  }

  it('charges a request for exactly the fields that make one, every field of the schema probed', async () => {
    const all = probes();
    // The walk must reach every type the lists name, and the embedded account.
    const reached = new Set(all.map(probeKey));
    for (const name of [...UPSTREAM_FIELDS].map((n) => n.split('.')[0]!)) assert.ok(reached.has(name), `${name} not reached`);
    assert.ok(reached.has('Account (embedded)'), 'the embedded account reached');

    const wrong: string[] = [];
    let probed = 0;
    for (const probe of all) {
      const base = await requestsOf(probe, () => '__typename');
      for (const field of Object.values(probe.type.getFields())) {
        const made = (await requestsOf(probe, selectionOf(probe.type, field))) - base;
        const charged = chargedUpstream(probe, field.name);
        probed++;
        if ((made > 0) !== charged) {
          wrong.push(`${probe.type.name}.${field.name}${probe.embedded ? ' (embedded account)' : ''}: ${made} request(s) made, ${charged ? '' : 'not '}charged`);
        }
        if (!WRITTEN_ACCOUNT_FIELDS.has(`${probe.type.name}.${field.name}`)) continue;
        // Past its id, a written account is read.
        const withData = (await requestsOf(probe, () => `${field.name} { firstName }`)) - base;
        if ((withData > 0) !== chargedUpstream(probe, field.name, true)) wrong.push(`${probe.type.name}.${field.name} { firstName }: ${withData} request(s) made`);
      }
    }
    assert.deepEqual(wrong, []);
    assert.ok(probed >= 70, `only ${probed} fields probed`);
  });
});
