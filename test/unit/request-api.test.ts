import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AccessGuard, OPEN_IDENTITY, type Identity } from '../../src/auth/index.ts';
import { RequestApi } from '../../src/loaders/request-api.ts';
import type { UpstreamClient } from '../../src/upstream/client.ts';
import type { UpstreamConnectToken } from '../../src/upstream/types.ts';
import { CallerWriteBudget } from '../../src/limits/caller-writes.ts';
import type { UpstreamAccount } from '../../src/upstream/types.ts';
import { deferred } from '../helpers/deferred.ts';

/** A token of account `id` that embeds the account under `firstName`. */
const usedToken = (id: string, firstName: string): UpstreamConnectToken =>
  ({ token: 't1', created: 1, used: 2, expires: false, callback_url: 'https://app.example.com/cb', account: { id, first_name: firstName, email_addresses: [], sources: [] } }) as unknown as UpstreamConnectToken;

describe('RequestApi after an account write', () => {
  it('does not let a token list asked for before the write, answered after it, prime the loader with the old account', async () => {
    let answerList: (tokens: UpstreamConnectToken[]) => void = () => {};
    let listRequested: () => void = () => {};
    const requested = new Promise<void>((resolve) => (listRequested = resolve));
    const singleReads: string[] = [];
    const client = {
      listConnectTokens: () =>
        new Promise<UpstreamConnectToken[]>((resolve) => {
          answerList = resolve;
          listRequested();
        }),
      updateAccount: async () => ({ success: true }),
      getConnectToken: async (accountId: string, token: string) => {
        singleReads.push(`${accountId}/${token}`);
        return usedToken(accountId, 'New');
      },
    } as unknown as UpstreamClient;
    const api = new RequestApi(client, new AccessGuard(OPEN_IDENTITY));

    const list = api.connectTokens('a1'); // asked for while the account's first name is still "Old"
    await requested;
    await api.updateAccount('a1', { first_name: 'New' });
    answerList([usedToken('a1', 'Old')]); // answered after the write
    await list;

    const token = await api.connectToken('a1', 't1');
    assert.deepEqual(singleReads, ['a1/t1'], 'read afresh, not from the stale list');
    assert.equal((token.account as { first_name?: string }).first_name, 'New');
  });
});

describe('RequestApi after an account write, for the account itself', () => {
  const accountNamed = (firstName: string) => ({ id: 'a1', first_name: firstName, email_addresses: [], sources: [] }) as unknown as UpstreamAccount;
  const firstName = (account: UpstreamAccount) => (account as { first_name?: string }).first_name;

  it('reads the account afresh after it is updated in the same operation, not from what it loaded before', async () => {
    let name = 'Old';
    let reads = 0;
    const client = {
      getAccount: async () => (reads++, accountNamed(name)),
      updateAccount: async () => ((name = 'New'), { success: true }),
    } as unknown as UpstreamClient;
    const api = new RequestApi(client, new AccessGuard(OPEN_IDENTITY));
    assert.equal(firstName(await api.account('a1')), 'Old');
    await api.updateAccount('a1', { first_name: 'New' });
    assert.equal(firstName(await api.account('a1')), 'New');
    assert.equal(reads, 2);
  });

  it('reads the account afresh after an update that names it in another case, not from what it loaded under the other', async () => {
    // An upstream may take an id in either case (the client takes an answer naming the id in another case for the
    // same account): `updateAccount(id: "ABC…")` in a mutation whose earlier payload loaded "abc…" (a used token's
    // embed names it so) showed that token's account, in the later payload, with the name from before the write.
    const id = 'abcdef0123456789abcdef01';
    let name = 'Old';
    const reads: string[] = [];
    const client = {
      getAccount: async (asked: string) => (reads.push(asked), { ...accountNamed(name), id }),
      updateAccount: async () => ((name = 'New'), { success: true }),
    } as unknown as UpstreamClient;
    const api = new RequestApi(client, new AccessGuard(OPEN_IDENTITY));
    assert.equal(firstName(await api.account(id)), 'Old');
    await api.updateAccount(id.toUpperCase(), { first_name: 'New' });
    assert.equal(firstName(await api.account(id)), 'New', 'the account after the write shows the write');
    assert.deepEqual(reads, [id, id], 'read again, not answered from before the write');
  });

  it('does not let a page of accounts asked for before the write, answered after it, prime the loader with the old account', async () => {
    const page = deferred<UpstreamAccount[]>();
    const pageRequested = deferred();
    let reads = 0;
    const client = {
      listAccounts: () => (pageRequested.resolve(), page.promise),
      updateAccount: async () => ({ success: true }),
      getAccount: async () => (reads++, accountNamed('New')),
    } as unknown as UpstreamClient;
    const api = new RequestApi(client, new AccessGuard(OPEN_IDENTITY));
    const listed = api.accountPage({ limit: 10, offset: 0 });
    await pageRequested.promise;
    await api.updateAccount('a1', { first_name: 'New' });
    page.resolve([accountNamed('Old')]); // answered after the write
    await listed;
    assert.equal(firstName(await api.account('a1')), 'New');
    assert.equal(reads, 1, 'read afresh, not from the stale page');
  });

  it('reads a page of accounts afresh after one of them is updated in the same operation, not from the page it loaded before', async () => {
    // No operation of today's schema both writes and lists accounts (the list is a Query field): this pins what
    // RequestApi promises its callers (a write forgets the pages that held the account) for the day one does.
    let name = 'Old';
    let pageReads = 0;
    const client = {
      listAccounts: async () => (pageReads++, [accountNamed(name)]),
      updateAccount: async () => ((name = 'New'), { success: true }),
    } as unknown as UpstreamClient;
    const api = new RequestApi(client, new AccessGuard(OPEN_IDENTITY));
    const query = { limit: 10, offset: 0 };
    assert.equal(firstName((await api.accountPage(query))[0]!), 'Old');
    await api.updateAccount('a1', { first_name: 'New' });
    assert.equal(firstName((await api.accountPage(query))[0]!), 'New', 'the page after the write shows the write');
    assert.equal(pageReads, 2, 'the page is read again, not answered from before the write');
  });
});

describe('RequestApi once its operation has ended', () => {
  it('reserves no more writes: nothing would give them back', () => {
    const budget = new CallerWriteBudget(2, () => 0);
    const caller: Identity = { kind: 'scoped', issuer: undefined, subject: 'c', accounts: new Set(['a1']), tokenDigest: undefined, caller: 'c' };
    const api = new RequestApi({} as UpstreamClient, new AccessGuard(caller), undefined, { writes: budget });
    api.releaseUnspentWrites(); // refused by another plugin while its writes were checked
    api.reserveWrites(2);
    // The caller's two writes are all still there.
    budget.reserve('c', 2).release();
  });
});

describe('RequestApi after a connect token is deleted', () => {
  it('reads the token and its list afresh later in the same operation, not from what it loaded before', async () => {
    const reads: string[] = [];
    let deleted = false;
    const client = {
      getConnectToken: async (accountId: string | null, token: string) => {
        reads.push(`get ${accountId}/${token}`);
        if (deleted) throw new Error(`Not found: connect token "${token}"`);
        return usedToken('a1', 'Ann');
      },
      listConnectTokens: async (accountId: string | null) => {
        reads.push(`list ${accountId}`);
        return deleted ? [] : [usedToken('a1', 'Ann')];
      },
      deleteConnectToken: async () => {
        deleted = true;
        return { success: true };
      },
    } as unknown as UpstreamClient;
    const api = new RequestApi(client, new AccessGuard(OPEN_IDENTITY));

    assert.equal((await api.connectToken('a1', 't1')).token, 't1');
    assert.equal((await api.connectTokens('a1')).length, 1);
    await api.deleteConnectToken('a1', 't1');
    await assert.rejects(api.connectToken('a1', 't1'), /Not found/);
    assert.deepEqual(await api.connectTokens('a1'), []);
    assert.deepEqual(reads, ['get a1/t1', 'list a1', 'get a1/t1', 'list a1']);
  });

  it('does not let a token list asked for before the delete, answered after it, put the deleted token back', async () => {
    const reads: string[] = [];
    let answerList: (tokens: UpstreamConnectToken[]) => void = () => {};
    const listRequested = deferred();
    const client = {
      listConnectTokens: () =>
        new Promise<UpstreamConnectToken[]>((resolve) => {
          answerList = resolve;
          listRequested.resolve();
        }),
      getConnectToken: async (_accountId: string | null, token: string) => {
        reads.push(`get ${token}`);
        throw new Error(`Not found: connect token "${token}"`);
      },
      deleteConnectToken: async () => ({ success: true }),
    } as unknown as UpstreamClient;
    const api = new RequestApi(client, new AccessGuard(OPEN_IDENTITY));

    const list = api.connectTokens('a1'); // asked for while the token still exists
    await listRequested.promise;
    await api.deleteConnectToken('a1', 't1');
    answerList([usedToken('a1', 'Ann')]); // answered after the delete, with the token in it
    await list;

    await assert.rejects(api.connectToken('a1', 't1'), /Not found/);
    assert.deepEqual(reads, ['get t1'], 'read afresh, not from the list answered after the delete');
  });
});

describe('RequestApi after a connect token is created', () => {
  it('reads the owner’s token list afresh later in the same operation: the new token is in it', async () => {
    const listed: Array<string | null> = [];
    const tokens: UpstreamConnectToken[] = [];
    const client = {
      listConnectTokens: async (accountId: string | null) => {
        listed.push(accountId);
        return [...tokens];
      },
      createConnectToken: async () => {
        tokens.push(usedToken('a1', 'Ann'));
        return { success: true, token: 't1', resource_url: 'r', browser_redirect_url: 'https://b.example/' };
      },
    } as unknown as UpstreamClient;
    const api = new RequestApi(client, new AccessGuard(OPEN_IDENTITY));

    assert.deepEqual(await api.connectTokens('a1'), []);
    await api.createConnectToken('a1', { callback_url: 'https://app.example.com/cb' });
    assert.deepEqual((await api.connectTokens('a1')).map((token) => token.token), ['t1']);
    assert.deepEqual(listed, ['a1', 'a1']);
  });
});

describe('RequestApi and a token that cannot be sent', () => {
  it('refuses it before its loader or client sees it: one token under a page of accounts is asked for once per account', async () => {
    // A caller's 1 MB token under a page of 100 accounts was made into 100 loader keys of 1 MB each before the
    // client refused it (~450 ms of CPU for one page).
    const reads: string[] = [];
    const client = {
      getConnectToken: async (accountId: string, token: string) => {
        reads.push(`${accountId}/${token.length}`);
        return usedToken(accountId, 'Ann');
      },
    } as unknown as UpstreamClient;
    const api = new RequestApi(client, new AccessGuard(OPEN_IDENTITY));
    const long = 'a'.repeat(1_000_000);
    for (const accountId of ['a1', 'a2', 'a3']) {
      await assert.rejects(api.connectToken(accountId, long), (error: { extensions?: { code?: string }; message: string }) => {
        assert.equal(error.extensions?.code, 'BAD_USER_INPUT');
        assert.match(error.message, /at most 256 characters long \(got 1000000\)/);
        return true;
      });
    }
    await assert.rejects(api.connectToken(null, 'a b'), /cannot contain a space/);
    assert.deepEqual(reads, [], 'no load reached the client');
  });
});

describe('RequestApi and an account id spelt like the top level', () => {
  it('keys the top-level tokens and their list apart from those of an account whose id is "null"', async () => {
    // The loaders' keys are JSON: an owner written as text (`${accountId}/${token}`, String(accountId)) made
    // the top-level tokens (owner null) and account "null"'s one key, each answered with the other's.
    const reads: string[] = [];
    const client = {
      getConnectToken: async (accountId: string | null, token: string) => {
        reads.push(`get ${JSON.stringify(accountId)} ${token}`);
        return { ...usedToken(accountId ?? 'top', 'Ann'), token };
      },
      listConnectTokens: async (accountId: string | null) => {
        reads.push(`list ${JSON.stringify(accountId)}`);
        return [];
      },
    } as unknown as UpstreamClient;
    const api = new RequestApi(client, new AccessGuard(OPEN_IDENTITY));
    const [top, ofAccount] = await Promise.all([api.connectToken(null, 't1'), api.connectToken('null', 't1')]);
    assert.deepEqual([top.account?.id, ofAccount.account?.id], ['top', 'null']);
    await Promise.all([api.connectTokens(null), api.connectTokens('null')]);
    assert.deepEqual(reads.sort(), ['get "null" t1', 'get null t1', 'list "null"', 'list null'], 'each owner read on its own');
  });
});
