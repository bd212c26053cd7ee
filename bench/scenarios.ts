import type { UpstreamClient } from '../src/upstream/client.ts';
import type { UpstreamAccount, UpstreamConnectToken } from '../src/upstream/types.ts';

/** What the emulator was seeded with (see emulator-child.ts). */
export interface BenchSeed {
  /** 20 accounts, each with two sources and two account-level connect tokens. */
  accountIds: string[];
  /** 100 used top-level tokens; token i belongs to account i % 20. */
  tokens: string[];
}

export type Variables = Record<string, unknown>;

export interface Scenario {
  id: 'account' | 'fanout' | 'dashboard' | 'mutation';
  title: string;
  query: string;
  /** The target: the distinct upstream resources the operation needs, and its dependency depth. */
  expected: { requests: number; roundTrips: number };
  variables(seed: BenchSeed): Variables;
  /** The floor: the same upstream calls, made directly with the project's client, and the same answer shape. */
  direct(client: UpstreamClient, variables: Variables): Promise<unknown>;
  /** A problem with a GraphQL answer's `data`, so numbers are never of wrong answers; undefined when fine. */
  check(data: Record<string, unknown>): string | undefined;
}

const iso = (seconds: number | false | undefined) => (seconds ? new Date(seconds * 1000).toISOString() : null);

const ACCOUNT_QUERY = /* GraphQL */ `
  query Account($id: ID!) {
    account(id: $id) {
      id
      username
      firstName
      lastName
      emailAddresses
      createdAt
      messageCount
      sources { label email status }
    }
  }
`;

const FANOUT_QUERY = /* GraphQL */ `
  query FanOut {
    connectTokens(first: 100) {
      nodes {
        token
        account { username messageCount }
      }
    }
  }
`;

const DASHBOARD_QUERY = /* GraphQL */ `
  query Dashboard($id: ID!, $token: ID!) {
    account(id: $id) {
      id
      firstName
      lastName
      emailAddresses
      messageCount
      fileCount
      sources { label email status useSsl }
      connectTokens { token used createdAt expiresAt }
    }
    connectToken(token: $token) {
      token
      used
      usedAt
      account { id emailAddresses firstName }
    }
  }
`;

const MUTATION_QUERY = /* GraphQL */ `
  mutation Rename($id: ID!, $firstName: String!) {
    updateAccount(id: $id, input: { firstName: $firstName }) {
      success
      account { id firstName lastName }
    }
  }
`;

const sourceStatus = (status: string | undefined) => status ?? null;

function accountFields(a: UpstreamAccount) {
  return {
    id: a.id,
    username: a.username ?? null,
    firstName: a.first_name ?? null,
    lastName: a.last_name ?? null,
    emailAddresses: a.email_addresses,
    createdAt: iso(a.created),
    messageCount: a.nb_messages ?? null,
    sources: a.sources.map((s) => ({ label: s.label, email: s.email ?? null, status: sourceStatus(s.status) })),
  };
}

const str = (v: unknown) => String(v);
/** The mutation's first name: every seeded account's is 'Bench' (emulator-child.ts). */
export const RENAMED = 'Renamed';

export const scenarios: Scenario[] = [
  {
    id: 'account',
    expected: { requests: 1, roundTrips: 1 },
    title: '1. one account by id',
    query: ACCOUNT_QUERY,
    variables: (seed) => ({ id: seed.accountIds[0] }),
    direct: async (client, v) => ({ account: accountFields(await client.getAccount(str(v['id']))) }),
    check: (data) => {
      const account = data['account'] as { id?: string; sources?: unknown[]; username?: string } | null;
      return account?.id && account.username && account.sources?.length === 2 ? undefined : 'account incomplete';
    },
  },
  {
    id: 'fanout',
    expected: { requests: 21, roundTrips: 2 },
    title: '2. connectTokens(first: 100) with each account (fan-out)',
    query: FANOUT_QUERY,
    variables: () => ({}),
    direct: async (client) => {
      const tokens = (await client.listConnectTokens(null)).slice(0, 100);
      const ids = [...new Set(tokens.flatMap((t) => (t.account ? [t.account.id] : [])))];
      const accounts = new Map((await Promise.all(ids.map((id) => client.getAccount(id)))).map((a) => [a.id, a]));
      return {
        connectTokens: {
          nodes: tokens.map((t) => {
            const a = t.account ? accounts.get(t.account.id) : undefined;
            return { token: t.token, account: a ? { username: a.username ?? null, messageCount: a.nb_messages ?? null } : null };
          }),
        },
      };
    },
    check: (data) => {
      const nodes = (data['connectTokens'] as { nodes?: { account?: { username?: string } | null }[] } | null)?.nodes ?? [];
      if (nodes.length !== 100) return `expected 100 tokens, got ${nodes.length}`;
      return nodes.every((n) => n.account?.username) ? undefined : 'a token without its account';
    },
  },
  {
    id: 'dashboard',
    expected: { requests: 3, roundTrips: 1 },
    title: '3. dashboard: account + sources + its tokens + a token lookup',
    query: DASHBOARD_QUERY,
    // The looked-up token belongs to another account than the one shown, so its account is not the same load.
    variables: (seed) => ({ id: seed.accountIds[0], token: seed.tokens[1] }),
    direct: async (client, v) => {
      const [a, accountTokens, token] = await Promise.all([
        client.getAccount(str(v['id'])),
        client.listConnectTokens(str(v['id'])),
        client.getConnectToken(null, str(v['token'])),
      ]);
      const tokenFields = (t: UpstreamConnectToken) => ({ token: t.token, used: Boolean(t.used), createdAt: iso(t.created), expiresAt: iso(t.expires) });
      return {
        account: {
          id: a.id,
          firstName: a.first_name ?? null,
          lastName: a.last_name ?? null,
          emailAddresses: a.email_addresses,
          messageCount: a.nb_messages ?? null,
          fileCount: a.nb_files ?? null,
          sources: a.sources.map((s) => ({ label: s.label, email: s.email ?? null, status: sourceStatus(s.status), useSsl: s.use_ssl ?? null })),
          connectTokens: accountTokens.map(tokenFields),
        },
        connectToken: {
          token: token.token,
          used: Boolean(token.used),
          usedAt: iso(token.used),
          account: embeddedOf(token.account),
        },
      };
    },
    check: (data) => {
      const account = data['account'] as { connectTokens?: unknown[] } | null;
      const token = data['connectToken'] as { account?: { id?: string } | null } | null;
      if (account?.connectTokens?.length !== 2) return 'account tokens missing';
      return token?.account?.id ? undefined : 'token account missing';
    },
  },
  {
    id: 'mutation',
    expected: { requests: 2, roundTrips: 2 },
    title: '4. mutation: updateAccount + the updated account',
    query: MUTATION_QUERY,
    // The same name every time: the data stays the same size and the other scenarios are not affected. Not the
    // seed's 'Bench', so that the check below sees the update applied, not the account as seeded.
    variables: (seed) => ({ id: seed.accountIds[2], firstName: RENAMED }),
    direct: async (client, v) => {
      const id = str(v['id']);
      const result = await client.updateAccount(id, { first_name: str(v['firstName']) });
      const a = await client.getAccount(id);
      return { updateAccount: { success: result.success, account: { id: a.id, firstName: a.first_name ?? null, lastName: a.last_name ?? null } } };
    },
    check: (data) => {
      const payload = data['updateAccount'] as { success?: boolean; account?: { firstName?: string } | null } | null;
      return payload?.success && payload.account?.firstName === RENAMED ? undefined : 'update not applied';
    },
  },
];

/** A used token's embedded account as the dashboard shows it. The emulator always embeds the whole account. */
function embeddedOf(account: UpstreamConnectToken['account']) {
  if (account === null) return null;
  if ('reference' in account) throw new Error('the emulator sent a bare account id');
  return { id: account.id, emailAddresses: account.email_addresses, firstName: account.first_name ?? null };
}
