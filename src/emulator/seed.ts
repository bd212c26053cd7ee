import type { UpstreamEmbeddedAccount } from '../upstream/types.ts';
import type { AccountRecord, NewSource, TokenRecord } from './store.ts';

/**
 * The demo data (`EMULATOR_SEED=demo`, the default): three accounts with sources in different states, a
 * used connect token, two unused top-level ones and one of an account. Fixed ids, so a frontend developing
 * offline can bookmark them across restarts.
 */

const DAY = 86_400;
const ADA = '52daabefcea6f9c35a4a0997';
/** Ada's account was made 90 days ago, and her used token two minutes after it. */
const adaCreated = (now: number) => now - 90 * DAY;

export interface DemoAccount {
  id: string;
  record: Omit<AccountRecord, 'id' | 'sources' | 'suspended' | 'password_expired'>;
  sources: NewSource[];
}

export function demoAccounts(now: number): DemoAccount[] {
  return [
    {
      id: ADA,
      record: {
        username: 'ada.example.com_8a1f0c3e5b7d9f21',
        created: adaCreated(now),
        email_addresses: ['ada@example.com'],
        first_name: 'Ada',
        last_name: 'Lovelace',
        nb_messages: 1284,
        nb_files: 96,
      },
      sources: [{ email: 'ada@example.com', server: 'imap.example.com', username: 'ada' }],
    },
    {
      id: '5f3c1e9a2b4d6f8071a3c5e7',
      record: {
        username: 'grace.example.org_0b2d4f6a8c1e3a5b',
        created: now - 30 * DAY,
        email_addresses: ['grace@example.org'],
        first_name: 'Grace',
        last_name: 'Hopper',
        nb_messages: 5312,
        nb_files: 410,
      },
      sources: [
        { email: 'grace@example.org', server: 'mail.example.org', username: 'grace' },
        {
          email: 'grace.hopper@gmail.com',
          server: 'imap.gmail.com',
          username: 'grace.hopper',
          authentication_type: 'oauth2',
          status: 'INVALID_CREDENTIALS',
          status_message: 'The mail server refused the credentials.',
        },
      ],
    },
    {
      id: '60aa0c1d2e3f405162738495',
      record: {
        username: 'alan.example.net_7c9e1a3b5d7f9b0d',
        created: now - 7 * DAY,
        email_addresses: ['alan@example.net'],
        first_name: 'Alan',
        last_name: 'Turing',
        nb_messages: 42,
        nb_files: 3,
      },
      sources: [
        {
          email: 'alan@example.net',
          server: 'imap.example.net',
          username: 'alan',
          port: 143,
          use_ssl: false,
          status: 'CONNECTION_IMPOSSIBLE',
          status_message: 'Could not reach imap.example.net:143.',
        },
      ],
    },
  ];
}

/** The demo tokens; `embedOf` renders a demo account as a used token embeds it. */
export function demoTokens(now: number, embedOf: (accountId: string) => UpstreamEmbeddedAccount): TokenRecord[] {
  return [
    {
      token: 'adaconnected0001',
      owner: null,
      email: 'ada@example.com',
      created: adaCreated(now),
      used: adaCreated(now) + 120,
      callback_url: 'http://localhost:3000/connected',
      first_name: 'Ada',
      last_name: 'Lovelace',
      account_id: ADA,
      account_snapshot: embedOf(ADA),
    },
    {
      token: 'demounused000001',
      owner: null,
      email: 'new.user@example.com',
      created: now - 3600,
      used: 0,
      callback_url: 'http://localhost:3000/connected',
      first_name: 'New',
      last_name: 'User',
    },
    {
      token: 'demounused000002',
      owner: null,
      created: now - 600,
      used: 0,
      callback_url: 'http://localhost:3000/connected?from=demo',
    },
    {
      token: 'gracesecond00001',
      owner: '5f3c1e9a2b4d6f8071a3c5e7',
      email: 'grace.hopper@navy.example.mil',
      created: now - 1800,
      used: 0,
      callback_url: 'http://localhost:3000/connected',
      first_name: 'Grace',
      last_name: 'Hopper',
    },
  ];
}
