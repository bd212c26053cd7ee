import type { Emulator } from '../../src/emulator/index.ts';
import { between, settings } from './settings.ts';

/** The soak's upstream: the emulator seeded with its accounts and tokens, and the faults it injects. */

export interface Seed {
  /** Accounts without permanent faults (some with latency). */
  healthy: string[];
  broken: string[];
  throttled: string[];
  flaky: string[];
  hanging: string[];
  all: string[];
  usedTokens: string[];
  unusedTokens: string[];
}

/**
 * Dozens of accounts with one to three sources each (some not OK) and account-level tokens for half of
 * them; 100 used top-level connect tokens attached to the accounts (a few tokens per account, as an app
 * whose users reconnect has), and 20 unused ones. The hanging accounts are reached by no token, so a
 * fan-out over the first page is not always held to the deadline.
 */
export function seed(emulator: Emulator): Seed {
  const store = emulator.store;
  const statuses = ['OK', 'OK', 'OK', 'INVALID_CREDENTIALS', 'CONNECTION_IMPOSSIBLE', 'TEMP_DISABLED'];
  const all: string[] = [];
  for (let i = 0; i < settings.accounts; i++) {
    const email = `user${i}@soak.example.com`;
    const sources = Array.from({ length: 1 + (i % 3) }, (_, s) => ({
      email: s === 0 ? email : `user${i}.alt${s}@soak.example.org`,
      server: s === 0 ? 'imap.soak.example.com' : 'imap.soak.example.org',
      username: `user${i}.${s}`,
      status: statuses[(i + s) % statuses.length]!,
    }));
    const account = store.createAccount({ email, first_name: 'Soak', last_name: `User ${i}`, nb_messages: 500 + i * 7, nb_files: i, sources });
    all.push(account.id);
    if (i % 2 === 0) {
      store.createConnectToken(account.id, { callback_url: 'http://127.0.0.1/callback', email });
      store.createConnectToken(account.id, { callback_url: 'http://127.0.0.1/callback' });
    }
  }
  const [broken, throttled, flaky, hanging] = [all.slice(0, 2), all.slice(2, 3), all.slice(3, 4), all.slice(4, 6)];
  const reachable = all.filter((id) => !hanging.includes(id));
  const usedTokens: string[] = [];
  for (let i = 0; i < settings.usedTokens; i++) {
    const email = `connect${i}@soak.example.com`;
    const token = store.createConnectToken(null, { callback_url: 'http://127.0.0.1/callback', email }).token;
    store.useConnectToken(token, { existingAccountId: reachable[i % reachable.length]! });
    usedTokens.push(token);
  }
  const unusedTokens = Array.from(
    { length: settings.unusedTokens },
    (_, i) => store.createConnectToken(null, { callback_url: 'http://127.0.0.1/callback', email: `pending${i}@soak.example.com` }).token,
  );
  return { healthy: all.slice(6), broken, throttled, flaky, hanging, all, usedTokens, unusedTokens };
}

export const FAULT_DESCRIPTION = [
  '2 accounts answer `GET /accounts/{id}` with 500 always',
  '1 account answers 429 without `Retry-After` always (retried with backoff, then RATE_LIMITED); 1 more answers 429 with `Retry-After: 0` once a second (the retry succeeds)',
  'every 10 s the next `GET /accounts/{id}` answers 429 with `Retry-After: 1`: the key is limited, so every call waits 1 s (or fails at once when that would pass its deadline)',
  '2 accounts never answer `GET /accounts/{id}` (hang; reached by no connect token)',
  'a third of the other accounts answer after 5–50 ms, `GET /connect_tokens` after 5–50 ms (changing every 0.5 s), `GET /accounts` after 10 ms',
  'every 0.5 s: the next 3 `GET /accounts/{id}` answer 503, the next `GET /connect_tokens/{token}` 500; every 2 s the next `POST /connect_tokens` 500',
];

/** Permanent per-account faults, then rotating ones; returns a stop function. */
export function injectFaults(emulator: Emulator, data: Seed): () => void {
  for (const id of data.broken) emulator.addFault({ method: 'GET', path: `/accounts/${id}`, status: 500 });
  // No Retry-After: the gateway cannot tell how long, so it retries this call alone rather than pausing the key.
  for (const id of data.throttled) emulator.addFault({ method: 'GET', path: `/accounts/${id}`, status: 429 });
  for (const id of data.hanging) emulator.addFault({ method: 'GET', path: `/accounts/${id}`, hang: true });
  data.healthy.forEach((id, i) => {
    if (i % 3 === 0) emulator.addFault({ method: 'GET', path: `/accounts/${id}`, latencyMs: between(5, 50) });
  });
  emulator.addFault({ method: 'GET', path: '/accounts', latencyMs: 10 });

  let rotating: Array<() => void> = [];
  let ticks = 0;
  const rotate = () => {
    for (const remove of rotating) remove();
    rotating = [
      emulator.addFault({ method: 'GET', path: '/connect_tokens', latencyMs: between(5, 50) }),
      emulator.addFault({ method: 'GET', path: /^\/accounts\/[0-9a-f]+$/, status: 503, times: 3 }),
      emulator.addFault({ method: 'GET', path: /^\/connect_tokens\/[^/]+$/, status: 500, times: 1 }),
    ];
    if (ticks % 2 === 0) rotating.push(...data.flaky.map((id) => emulator.addFault({ method: 'GET', path: `/accounts/${id}`, status: 429, retryAfter: 0, times: 1 })));
    // The key's limit reached now and then: a 429 with a Retry-After pauses every call of the gateway.
    if (ticks % 20 === 0) rotating.push(emulator.addFault({ method: 'GET', path: /^\/accounts\/[0-9a-f]+$/, status: 429, retryAfter: 1, times: 1 }));
    if (ticks % 4 === 0) rotating.push(emulator.addFault({ method: 'POST', path: '/connect_tokens', status: 500, times: 1 }));
    ticks++;
  };
  rotate();
  const timer = setInterval(rotate, 500);
  return () => {
    clearInterval(timer);
    emulator.clearFaults();
  };
}
