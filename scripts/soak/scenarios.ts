import { post, run, send, wrong } from './client.ts';
import { between, hex24, pick } from './settings.ts';
import type { Seed } from './upstream.ts';

/** What the soak's clients do: each scenario, by weight, with the checks that its answer is for the question asked. */

const ACCOUNT = `query Account($id: ID!) { account(id: $id) { id username firstName emailAddresses createdAt messageCount sources { label email status } } }`;
const ACCOUNTS = `query Accounts($first: Int, $after: String, $filter: AccountFilter) {
  accounts(first: $first, after: $after, filter: $filter) { edges { cursor node { id username } } nodes { id createdAt } pageInfo { hasNextPage endCursor } } }`;
const FANOUT = `query FanOut { connectTokens(first: 100) { nodes { token used account { id username } } pageInfo { hasNextPage } } }`;
const TOKENS_PAGE = `query Tokens($first: Int, $after: String) { connectTokens(first: $first, after: $after) { nodes { token email used expiresAt } pageInfo { hasNextPage endCursor } } }`;
const DASHBOARD = `query Dashboard($id: ID!, $token: ID!) {
  account(id: $id) { id firstName lastName emailAddresses messageCount fileCount sources { label email status useSsl } connectTokens { token used createdAt expiresAt } }
  connectToken(token: $token) { token used usedAt account { id emailAddresses firstName } } }`;
const TOKEN = `query Token($token: ID!) { connectToken(token: $token) { token used usedAt expiresAt callbackUrl account { id username sources { label } } } }`;
const CREATE = `mutation Create($input: CreateConnectTokenInput!) { createConnectToken(input: $input) { token resourceUrl browserRedirectUrl connectToken { token used } } }`;
const DELETE = `mutation Delete($token: ID!) { deleteConnectToken(token: $token) { success token } }`;
const UPDATE = `mutation Rename($id: ID!, $firstName: String!) { updateAccount(id: $id, input: { firstName: $firstName }) { success account { id firstName } } }`;

/** `account { connectTokens { token account { connectTokens { … id } } } }`, `levels` selection sets deep. */
function deepQuery(id: string, levels: number): string {
  let inner = 'id';
  for (let i = 1; i < levels / 2; i++) inner = `connectTokens { token account { ${inner} } }`;
  return `{ account(id: "${id}") { ${inner} } }`;
}
const aliasQuery = (id: string, count: number) => `{ ${Array.from({ length: count }, (_, i) => `a${i}: account(id: "${id}") { id }`).join(' ')} }`;

/** Connect tokens created by the load whose deletion has not succeeded yet; deleted before new ones are made. */
export const undeleted: string[] = [];
/** The last cursor of each filter's list (`''`: unfiltered): a cursor continues only the list it came from. */
const accountsCursors = new Map<string, string | null>();
let tokensCursor: string | null = null;

export type Scenario = { kind: string; weight: number; run: (data: Seed) => Promise<void> };

const scenarios: Scenario[] = [
  {
    kind: 'account',
    weight: 18,
    run: async (data) => {
      const id = Math.random() < 0.8 ? pick(data.healthy) : pick(data.all);
      const answer = await send('account', post(ACCOUNT, { id }));
      if (!answer) return;
      const account = answer.body.data?.['account'] as { id?: string } | null | undefined;
      if (account ? account.id !== id : !answer.body.errors?.length) wrong('account', answer, `asked for ${id}`);
    },
  },
  {
    kind: 'account (unknown id)',
    weight: 3,
    run: async () => {
      const answer = await send('account (unknown id)', post(ACCOUNT, { id: hex24() }));
      if (answer && answer.body.data?.['account']) wrong('account (unknown id)', answer, 'an unknown account was found');
    },
  },
  {
    kind: 'accounts page',
    weight: 10,
    run: async () => {
      const first = between(1, 50);
      const variables: Record<string, unknown> = { first };
      if (Math.random() < 0.2) variables['filter'] = pick([{ status: 'OK' }, { statusOk: false }, { email: 'user7@soak.example.com' }]);
      const list = variables['filter'] === undefined ? '' : JSON.stringify(variables['filter']);
      const cursor = accountsCursors.get(list);
      if (cursor && Math.random() < 0.5) variables['after'] = cursor;
      const answer = await send('accounts page', post(ACCOUNTS, variables));
      const page = answer?.body.data?.['accounts'] as { nodes: unknown[]; edges: unknown[]; pageInfo: { endCursor: string | null } } | null | undefined;
      if (!answer || !page) return;
      if (page.nodes.length > first || page.edges.length !== page.nodes.length) wrong('accounts page', answer, `first: ${first}`);
      accountsCursors.set(list, page.pageInfo.endCursor);
    },
  },
  {
    kind: 'connectTokens fan-out',
    weight: 8,
    run: async () => {
      const answer = await send('connectTokens fan-out', post(FANOUT));
      const page = answer?.body.data?.['connectTokens'] as { nodes: unknown[] } | null | undefined;
      if (answer && page && page.nodes.length > 100) wrong('connectTokens fan-out', answer, 'more than 100 tokens');
    },
  },
  {
    kind: 'connectTokens page',
    weight: 4,
    run: async () => {
      const variables: Record<string, unknown> = { first: between(5, 40) };
      if (tokensCursor && Math.random() < 0.5) variables['after'] = tokensCursor;
      const answer = await send('connectTokens page', post(TOKENS_PAGE, variables));
      const page = answer?.body.data?.['connectTokens'] as { pageInfo: { endCursor: string | null } } | null | undefined;
      if (page) tokensCursor = page.pageInfo.endCursor;
    },
  },
  {
    kind: 'dashboard',
    weight: 14,
    run: async (data) => {
      const id = Math.random() < 0.85 ? pick(data.healthy) : pick(data.all);
      const token = Math.random() < 0.8 ? pick(data.usedTokens) : pick(data.unusedTokens);
      const answer = await send('dashboard', post(DASHBOARD, { id, token }));
      if (!answer) return;
      const account = answer.body.data?.['account'] as { id?: string } | null | undefined;
      const connectToken = answer.body.data?.['connectToken'] as { token?: string } | null | undefined;
      if (account && account.id !== id) wrong('dashboard', answer, `asked for account ${id}`);
      if (connectToken && connectToken.token !== token) wrong('dashboard', answer, `asked for token ${token}`);
    },
  },
  {
    kind: 'connectToken',
    weight: 5,
    run: async (data) => {
      const token = Math.random() < 0.7 ? pick(data.usedTokens) : pick(data.unusedTokens);
      const answer = await send('connectToken', post(TOKEN, { token }));
      const found = answer?.body.data?.['connectToken'] as { token?: string } | null | undefined;
      if (answer && found && found.token !== token) wrong('connectToken', answer, `asked for ${token}`);
    },
  },
  {
    kind: 'create + delete connect token',
    weight: 10,
    run: async () => {
      const leftover = undeleted.shift();
      const created = leftover
        ? leftover
        : await (async () => {
            const answer = await send(
              'createConnectToken',
              post(CREATE, { input: { callbackUrl: 'http://127.0.0.1/callback', email: `soak${between(1, 1e6)}@soak.example.com`, firstName: 'Soak' } }),
            );
            const payload = answer?.body.data?.['createConnectToken'] as { token?: unknown } | null | undefined;
            if (answer && payload && typeof payload.token !== 'string') wrong('createConnectToken', answer, 'no token');
            return typeof payload?.token === 'string' ? payload.token : undefined;
          })();
      if (created === undefined || run.stopping) {
        if (created !== undefined) undeleted.push(created);
        return;
      }
      const answer = await send('deleteConnectToken', post(DELETE, { token: created }));
      const payload = answer?.body.data?.['deleteConnectToken'] as { success?: boolean; token?: string } | null | undefined;
      if (answer && payload && payload.token !== created) wrong('deleteConnectToken', answer, `deleted ${created}`);
      const codes = (answer?.body.errors ?? []).map((e) => e.extensions?.code);
      // Deleted, or already gone (a retried DELETE): done. Anything else: try again later.
      if (!payload?.success && !codes.includes('NOT_FOUND')) undeleted.push(created);
    },
  },
  {
    kind: 'updateAccount',
    weight: 3,
    run: async (data) => {
      const id = pick(data.healthy);
      const answer = await send('updateAccount', post(UPDATE, { id, firstName: `Soak${between(1, 99)}` }));
      const account = (answer?.body.data?.['updateAccount'] as { account?: { id?: string } | null } | null | undefined)?.account;
      if (answer && account && account.id !== id) wrong('updateAccount', answer, `updated ${id}`);
    },
  },
  {
    kind: 'parse error',
    weight: 4,
    run: async () => void (await send('parse error', post(pick(['{ account(id: "x" { id }', 'query {', 'mutation { deleteConnectToken(token: ) }', '}}}'])))),
  },
  {
    kind: 'validation error',
    weight: 3,
    run: async (data) => void (await send('validation error', post(pick([`{ account(id: "${pick(data.all)}") { password } }`, '{ accounts { nodes { nope } } }', '{ account { id } }'])))),
  },
  {
    kind: 'first: 1000',
    weight: 2,
    run: async () => void (await send('first: 1000', post('{ accounts(first: 1000) { nodes { id } } }'))),
  },
  {
    kind: 'too deep (40 levels)',
    weight: 3,
    run: async (data) => void (await send('too deep (40 levels)', post(deepQuery(pick(data.healthy), 40)))),
  },
  {
    kind: '1000 aliases',
    weight: 2,
    run: async (data) => void (await send('1000 aliases', post(aliasQuery(pick(data.healthy), 1000)))),
  },
  {
    kind: 'malformed JSON body',
    weight: 2,
    run: async () => void (await send('malformed JSON body', { body: '{"query": "{ accounts { nodes { id } } }"' })),
  },
  {
    kind: 'GET query',
    weight: 3,
    run: async (data) => {
      const query = encodeURIComponent(ACCOUNT);
      const variables = encodeURIComponent(JSON.stringify({ id: pick(data.healthy) }));
      await send('GET query', { method: 'GET', path: `/graphql?query=${query}&variables=${variables}`, headers: { 'apollo-require-preflight': 'true' } });
    },
  },
  {
    kind: 'aborted by client',
    weight: 8,
    run: async (data) => {
      const body = pick([post(FANOUT), post(DASHBOARD, { id: pick(data.all), token: pick(data.usedTokens) }), post(ACCOUNT, { id: pick(data.all) })]);
      await send('aborted by client', body, between(1, 60));
    },
  },
];
const totalWeight = scenarios.reduce((sum, s) => sum + s.weight, 0);
export function pickScenario(): Scenario {
  let r = Math.random() * totalWeight;
  for (const scenario of scenarios) {
    r -= scenario.weight;
    if (r < 0) return scenario;
  }
  return scenarios[0]!;
}
