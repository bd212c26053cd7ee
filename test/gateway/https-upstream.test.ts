import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { startEmulator, type Emulator } from '../../src/emulator/index.ts';
import { eventually } from '../helpers/eventually.ts';
import { closeServer, forward, listenOnLoopback } from '../helpers/net.ts';
import { IN_MAIN, LIST, servesOneRequestACall, threeListsFail, type GraphQLAnswer } from '../helpers/remote-upstream.ts';
import { runScript, type RunningScript } from '../helpers/script.ts';
import { postGraphQL } from '../helpers/stack.ts';

/**
 * The gateway as deployed against `https://api.context.io/2.0`: `npm start`'s main with an https:// CONTEXTIO_API_URL,
 * trusting the tests' certificate authority by NODE_EXTRA_CA_CERTS (read at process start, hence a process of
 * its own), in front of the emulator through a TLS front of the test's own. Certificates: test/fixtures/tls/.
 */

const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/tls/${name}`, import.meta.url));

/** What the TLS front presents on a new connection: a certificate of the fixtures, or no TLS at all. */
type Presented = 'localhost.pem' | 'self-signed.pem' | 'expired.pem' | 'other-host.pem' | 'plain http' | 'client certificate wanted';

interface TlsFront {
  /** `https://127.0.0.1:<port>/2.0`. */
  url: string;
  /** What new connections meet from now on; the open ones are closed. */
  present(what: Presented): void;
  /**
   * TCP connections accepted, TLS sessions established, requests forwarded to the emulator, and answers to them
   * handed whole to the operating system (which delivers them even if `present` closes their connection next).
   */
  readonly counts: { connections: number; sessions: number; requests: number; answered: number };
  close(): Promise<void>;
}

/**
 * One port whose connections are handed to an https server of the presented certificate (or to a plain HTTP
 * server), which forwards each request to the emulator as a TLS-terminating proxy does: Host kept and
 * `X-Forwarded-Proto: https`, so that the emulator checks signatures of the https:// URL the gateway called.
 */
async function startTlsFront(emulator: Emulator): Promise<TlsFront> {
  const counts = { connections: 0, sessions: 0, requests: 0, answered: 0 };
  const toEmulator = (req: IncomingMessage, res: ServerResponse) => {
    counts.requests++;
    res.on('finish', () => counts.answered++);
    forward(req, res, `${emulator.origin}${req.url}`, { headers: { ...req.headers, 'x-forwarded-proto': 'https' } });
  };
  const key = readFileSync(fixture('key.pem'));
  const servers = new Map<Presented, { emit(event: 'connection', socket: Socket): boolean }>();
  for (const name of ['localhost.pem', 'self-signed.pem', 'expired.pem', 'other-host.pem'] as const) {
    const server = createHttpsServer({ key, cert: readFileSync(fixture(name)) }, toEmulator);
    server.on('secureConnection', () => counts.sessions++);
    servers.set(name, server);
  }
  // A server that wants a client certificate, which the gateway has none of: over TLS 1.3 it says so by an alert
  // only once the gateway's side of the handshake is done, its request written.
  const wantsCertificate = createHttpsServer({ key, cert: readFileSync(fixture('localhost.pem')), requestCert: true, rejectUnauthorized: true, ca: readFileSync(fixture('ca.pem')) }, toEmulator);
  wantsCertificate.on('secureConnection', () => counts.sessions++);
  servers.set('client certificate wanted', wantsCertificate);
  // An http:// server where https:// is expected: it answers the TLS greeting 400 and closes.
  servers.set('plain http', createHttpServer(toEmulator));
  let presented: Presented = 'localhost.pem';
  const sockets = new Set<Socket>();
  const front = createNetServer((socket) => {
    counts.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    servers.get(presented)!.emit('connection', socket);
  });
  const port = await listenOnLoopback(front);
  const closeOpenConnections = () => {
    for (const socket of sockets) socket.destroy();
  };
  return {
    url: `https://127.0.0.1:${port}/2.0`,
    present(what) {
      presented = what;
      closeOpenConnections();
    },
    counts,
    async close() {
      closeOpenConnections();
      await closeServer(front);
    },
  };
}

describe('npm start against an https:// upstream (its authority in NODE_EXTRA_CA_CERTS)', () => {
  let emulator: Emulator;
  let front: TlsFront;
  let gateway: RunningScript;
  let url: string;

  before(async () => {
    emulator = await startEmulator({ port: 0, seed: 'none', consumerKey: 'remote-key', consumerSecret: 'remote-secret' });
    front = await startTlsFront(emulator);
    gateway = runScript('src/main.ts', {
      PORT: '0',
      LOG_LEVEL: 'info',
      CONTEXTIO_API_URL: front.url,
      CONTEXTIO_CONSUMER_KEY: 'remote-key',
      CONTEXTIO_CONSUMER_SECRET: 'remote-secret',
      NODE_EXTRA_CA_CERTS: fixture('ca.pem'),
    });
    url = (await gateway.waitForLine(/"graphql":"([^"]+)"/))[1]!;
    // Its check of the upstream at start: answered, over TLS. Its answer must have left the front before a test
    // presents another certificate, closing the connection: cut short, the check's retry made one handshake
    // more than the three a refusal test counts (4 !== 3, run alone).
    await eventually(() => front.counts.answered > 0, IN_MAIN);
    assert.deepEqual(emulator.requests.map((r) => [r.method, r.path, r.status]), [['GET', '/accounts', 200]]);
  });

  after(async () => {
    gateway?.child.kill('SIGTERM');
    if (gateway) assert.equal((await gateway.exited)[0], 0, gateway.lines.join('\n'));
    await front?.close();
    await emulator?.close();
  });

  it('serves queries and a mutation over TLS, signed for the https:// URL with its port, one request a call, over kept-alive connections', async () => {
    const before = { ...front.counts };
    // The same requests as over http, the POST's signed for the https://127.0.0.1:<port>/2.0/accounts the gateway called.
    const calls = await servesOneRequestACall(url, emulator, 'tls@example.com');
    const requests = front.counts.requests - before.requests;
    const sessions = front.counts.sessions - before.sessions;
    assert.equal(requests, calls.length);
    // Every connection made a TLS session, and sessions are kept alive: the calls came one after another, and
    // a pool of connections reused needs few (undici opens a second one for a call sent while the first
    // connection is still ending its previous answer); a handshake a request would be one each.
    assert.equal(front.counts.connections - before.connections, sessions);
    assert.ok(sessions <= 2, `${sessions} TLS sessions for ${requests} requests`);
  });

  for (const [presented, code, said] of [
    ['self-signed.pem', /^DEPTH_ZERO_SELF_SIGNED_CERT$/, /^The upstream’s TLS certificate could not be verified/],
    ['expired.pem', /^CERT_HAS_EXPIRED$/, /^The upstream’s TLS certificate could not be verified/],
    ['other-host.pem', /^ERR_TLS_CERT_ALTNAME_INVALID$/, /^The upstream’s TLS certificate could not be verified/],
    // OpenSSL's code for the HTTP answer it read as TLS ("wrong version number" on OpenSSL 3).
    ['plain http', /^ERR_SSL_/, /^The TLS handshake with the upstream failed/],
    // Not a connection broken after the request went out (retried, counted by the breaker, a write said to have
    // maybe taken effect): the server read nothing.
    ['client certificate wanted', /^ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED$/, /^The TLS handshake with the upstream failed/],
  ] as const) {
    const server =
      presented === 'plain http' ? 'an http:// server at the https:// address' : presented === 'client certificate wanted' ? 'a server that wants a client certificate' : `a certificate the gateway refuses (${presented})`;
    it(`answers UPSTREAM_ERROR for ${server}: not retried, said at error with its code`, async () => {
      front.present(presented);
      emulator.clearRequests();
      const linesBefore = gateway.lines.length;
      const connectionsBefore = front.counts.connections;
      // (That the breaker does not count it is test/unit/client.test.ts's: here the successes just before would
      // keep it from counting any failure for a second.)
      const entries = await threeListsFail(gateway, url, said);
      // A refusal is the same on every attempt: one connection a call, where a retried GET makes three.
      assert.equal(front.counts.connections - connectionsBefore, 3);
      assert.equal(emulator.requests.length, 0);
      // A configuration fault every call meets, as a refused key pair: one line at error, naming the code.
      const faults = entries.filter((e) => e['level'] === 'error' && String(e['message']).includes('TLS'));
      assert.equal(faults.length, 1, gateway.lines.slice(linesBefore).join('\n'));
      assert.match(String(faults[0]!['code']), code);
      assert.ok(String(faults[0]!['message']).includes(`(${String(faults[0]!['code'])})`), 'the TLS fault’s message names its code in parentheses');
      assert.ok(gateway.lines.every((line) => !line.includes('remote-secret')), 'no line holds the remote secret');
    });
  }

  it('serves again once the certificate is right', async () => {
    front.present('localhost.pem');
    assert.equal((await postGraphQL<GraphQLAnswer>(url, LIST)).errors, undefined);
  });
});

describe('npm start with a NODE_EXTRA_CA_CERTS it cannot load', () => {
  it('says so at start in a line of its log, naming the file, where Node prints a line of plain text and starts trusting nothing of it', async () => {
    const missing = fixture('no-such-ca.pem');
    // A file that is no certificate: the private key (a test fixture, not a secret), whose contents are never quoted.
    for (const [file, said] of [
      [missing, /could not be read \(ENOENT\)/],
      [fixture('key.pem'), /holds no PEM certificate/],
    ] as const) {
      const gateway = runScript('src/main.ts', {
        PORT: '0',
        LOG_LEVEL: 'error',
        CONTEXTIO_API_URL: 'https://127.0.0.1:1/2.0',
        CONTEXTIO_CONSUMER_KEY: 'remote-key',
        CONTEXTIO_CONSUMER_SECRET: 'remote-secret',
        NODE_EXTRA_CA_CERTS: file,
      });
      try {
        const [line] = await gateway.waitForLine(/^\{.*NODE_EXTRA_CA_CERTS.*\}$/);
        const entry = JSON.parse(line) as Record<string, unknown>;
        assert.equal(entry['level'], 'warn', line);
        assert.match(String(entry['message']), said);
        assert.equal(entry['file'], file);
        assert.ok(!line.includes('PRIVATE KEY'), 'the file’s contents are not quoted');
      } finally {
        gateway.child.kill('SIGTERM');
        await gateway.exited;
      }
    }
  });
});
