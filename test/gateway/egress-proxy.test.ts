import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { startEmulator, type Emulator } from '../../src/emulator/index.ts';
import { eventually } from '../helpers/eventually.ts';
import { closeServer, listenOnLoopback, startConnectProxy, type ConnectProxy } from '../helpers/net.ts';
import { IN_MAIN, LIST, servesOneRequestACall, threeListsFail, type GraphQLAnswer } from '../helpers/remote-upstream.ts';
import { logEntries, runScript, type RunningScript } from '../helpers/script.ts';
import { postGraphQL } from '../helpers/stack.ts';

/**
 * The gateway deployed where the only way out is an egress proxy: `npm start`'s main with
 * `CONTEXTIO_API_URL=http://contextio.test/2.0`, a name that does not resolve (`.test` is reserved), so that
 * only the proxy can reach it, and `HTTP_PROXY` naming a CONNECT proxy of the test's own that leads
 * `contextio.test:80` to the emulator.
 */

const PROXY_PASSWORD = 'proxy-pa55-never-shown';
const PROXY_AUTHORIZATION = `Basic ${Buffer.from(`proxy-user:${PROXY_PASSWORD}`).toString('base64')}`;

/** The gateway's environment: the emulator's key pair, its API at contextio.test, and the proxy's URL with credentials. */
const environment = (proxy: ConnectProxy, more: Record<string, string> = {}) => ({
  PORT: '0',
  LOG_LEVEL: 'info',
  CONTEXTIO_API_URL: 'http://contextio.test/2.0',
  CONTEXTIO_CONSUMER_KEY: 'remote-key',
  CONTEXTIO_CONSUMER_SECRET: 'remote-secret',
  HTTP_PROXY: proxy.url.replace('://', `://proxy-user:${PROXY_PASSWORD}@`),
  ...more,
});

/** The emulator answering to contextio.test, the name the gateway calls and signs for, and a proxy (`tls`: https://) leading `contextio.test:80` to it. */
async function emulatorBehindProxy(tls?: Parameters<typeof startConnectProxy>[1]): Promise<{ emulator: Emulator; proxy: ConnectProxy }> {
  const emulator = await startEmulator({ port: 0, seed: 'none', consumerKey: 'remote-key', consumerSecret: 'remote-secret', allowedHosts: ['contextio.test'] });
  const emulatorPort = Number(new URL(emulator.origin).port);
  const proxy = await startConnectProxy((authority) => (authority === 'contextio.test:80' ? emulatorPort : undefined), tls);
  return { emulator, proxy };
}

/** A file of the test certificates (test/fixtures/tls/). */
const tlsFixture = (name: string) => fileURLToPath(new URL(`../fixtures/tls/${name}`, import.meta.url));

/** Nothing of the proxy's credentials (nor the consumer secret) in what the gateway printed. */
function assertNoSecrets(lines: readonly string[]): void {
  for (const secret of [PROXY_PASSWORD, PROXY_AUTHORIZATION.slice('Basic '.length), 'remote-secret']) {
    assert.ok(lines.every((line) => !line.includes(secret)), `a line shows ${secret}`);
  }
}

describe('npm start behind an egress proxy (HTTP_PROXY)', () => {
  let emulator: Emulator;
  let proxy: ConnectProxy;
  let gateway: RunningScript;
  let url: string;

  before(async () => {
    ({ emulator, proxy } = await emulatorBehindProxy());
    // Its check of the upstream at start meets a proxy that cannot reach it (a 502 to its CONNECT), which the
    // warning it makes says; then the proxy opens tunnels.
    await proxy.refuseWith(502);
    gateway = runScript('src/main.ts', environment(proxy));
    url = (await gateway.waitForLine(/"graphql":"([^"]+)"/))[1]!;
    await gateway.waitForLine(/CONTEXTIO_API_URL cannot be used now/);
    await proxy.refuseWith(undefined);
  });

  after(async () => {
    gateway?.child.kill('SIGTERM');
    if (gateway) assert.equal((await gateway.exited)[0], 0, gateway.lines.join('\n'));
    await proxy?.close();
    await emulator?.close();
  });

  it('says at start that the upstream is reached through the proxy, by host and port only, and that it could not be then', () => {
    const entries = logEntries(gateway.lines);
    const ready = entries.find((e) => e['message'] === 'gateway ready')!;
    assert.equal(ready['upstream'], 'http://contextio.test/2.0');
    assert.equal(ready['egressProxy'], `${proxy.hostPort} (HTTP_PROXY)`);
    const unusable = entries.find((e) => String(e['message']).startsWith('CONTEXTIO_API_URL cannot be used now'))!;
    assert.equal(unusable['message'], `CONTEXTIO_API_URL cannot be used now: The upstream could not be reached through the egress proxy ${proxy.hostPort} (it answered the tunnel HTTP 502) while listing accounts. Operations that need it fail until it can`);
    assert.equal(unusable['egressProxy'], `${proxy.hostPort} (HTTP_PROXY)`);
    // Retried as a connection that failed: a CONNECT for each of its three attempts.
    assert.equal(proxy.counts.connects, 3);
    assertNoSecrets(gateway.lines);
  });

  it('serves queries and a mutation through the proxy, one request a call, its credentials on each tunnel, tunnels kept alive', async () => {
    const before = { ...proxy.counts };
    // Signed for http://contextio.test/2.0/…, the URL the gateway called (the POST's form too).
    const calls = await servesOneRequestACall(url, emulator, 'proxied@example.com');
    // Every CONNECT opened a tunnel, with the proxy's credentials; calls one after another reuse them (a
    // second one at most, opened while the first still ends its answer): a tunnel a call would be 13.
    const connects = proxy.counts.connects - before.connects;
    assert.equal(proxy.counts.tunnels - before.tunnels, connects);
    assert.ok(connects <= 2, `${connects} tunnels for ${calls.length} requests`);
    assert.deepEqual(new Set(proxy.authorizations), new Set([PROXY_AUTHORIZATION]));
  });

  // What each refusal asks of the operator: a 401 is tinyproxy's answer to a CONNECT with wrong credentials.
  const hints: Record<number, string> = {
    407: 'it wants credentials: check the user name and password in HTTP_PROXY',
    401: 'it wants credentials: check the user name and password in HTTP_PROXY',
    403: 'does it allow CONNECT to CONTEXTIO_API_URL’s host and port?',
  };
  for (const status of [407, 401, 403]) {
    it(`answers UPSTREAM_ERROR for a tunnel the proxy refuses (HTTP ${status}): one CONNECT a call, not retried, said at error with its status`, async () => {
      await proxy.refuseWith(status);
      emulator.clearRequests();
      const connectsBefore = proxy.counts.connects;
      const said = new RegExp(`^The egress proxy ${proxy.hostPort} refused to open a tunnel to the upstream \\(HTTP ${status}\\) while listing accounts$`);
      const entries = await threeListsFail(gateway, url, said);
      // Refused the same on every attempt: one CONNECT a call, where a retried GET makes three.
      assert.equal(proxy.counts.connects - connectsBefore, 3);
      assert.equal(emulator.requests.length, 0);
      // A configuration fault every call meets: one line at error, naming the status and the proxy.
      const faults = entries.filter((e) => e['level'] === 'error');
      assert.deepEqual(faults.map((e) => [e['status'], e['proxy']]), [[status, proxy.hostPort]], JSON.stringify(entries));
      assert.equal(faults[0]!['message'], `the egress proxy refused to open a tunnel to the upstream (HTTP ${status}): ${hints[status]}`);
      assertNoSecrets(gateway.lines);
    });
  }

  it('serves again once the proxy opens tunnels again', async () => {
    await proxy.refuseWith(undefined);
    assert.equal((await postGraphQL<GraphQLAnswer>(url, LIST)).errors, undefined);
  });
});

describe('npm start with NO_PROXY naming the upstream', () => {
  it('goes around the proxy: the name does not resolve, so the call could not be reached, and the proxy saw nothing', async () => {
    const proxy = await startConnectProxy(() => undefined);
    const gateway = runScript('src/main.ts', environment(proxy, { NO_PROXY: 'localhost,contextio.test' }));
    try {
      const url = (await gateway.waitForLine(/"graphql":"([^"]+)"/))[1]!;
      const ready = logEntries(gateway.lines).find((e) => e['message'] === 'gateway ready')!;
      assert.equal(ready['egressProxy'], undefined);
      const answer = await postGraphQL<GraphQLAnswer>(url, LIST);
      assert.deepEqual(answer.errors?.map((e) => e.extensions?.['code']), ['UPSTREAM_ERROR']);
      assert.equal(answer.errors![0]!.message, 'The upstream could not be reached while listing accounts');
      assert.equal(proxy.counts.connects, 0);
      assertNoSecrets(gateway.lines);
    } finally {
      gateway.child.kill('SIGTERM');
      await gateway.exited;
      await proxy.close();
    }
  });
});

/**
 * A gateway whose every connection fails its TLS handshake on a demand for a client certificate (over TLS 1.3, made
 * once the gateway's side of the handshake is done, its request written): `said` at start and to three calls, each
 * making one connection (`connections`), not retried as one broken; the alert's code at error (with `proxy`, the
 * proxy's as the peer).
 */
async function failsForClientCertificate(gateway: RunningScript, said: string, connections: () => number, proxy?: string): Promise<void> {
  const url = (await gateway.waitForLine(/"graphql":"([^"]+)"/))[1]!;
  const [warning] = await gateway.waitForLine(/CONTEXTIO_API_URL cannot be used now: .*/);
  assert.ok(warning.includes(`cannot be used now: ${said} while listing accounts.`), warning);
  const before = connections();
  await threeListsFail(gateway, url, new RegExp(`^${said.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  assert.equal(connections() - before, 3);
  assert.ok(
    logEntries(gateway.lines).some((e) => e['level'] === 'error' && e['code'] === 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED' && e['proxy'] === proxy),
    'a line at error names the alert’s code',
  );
  assertNoSecrets(gateway.lines);
}

describe('npm start behind an egress proxy (HTTPS_PROXY), its https:// upstream wanting a client certificate', () => {
  it('says the TLS handshake with the upstream failed, at start and to each call: one tunnel a call, not retried, said at error with its code', async () => {
    // Over TLS 1.3 the server says it wants a client certificate only once the gateway's side of the handshake is
    // done, its request written; the server reads none of it. (No fixture names contextio.test: the gateway
    // checks no certificate here, its handshake failing on the client certificate all the same.)
    let connections = 0;
    const upstream = createHttpsServer(
      { key: readFileSync(tlsFixture('key.pem')), cert: readFileSync(tlsFixture('localhost.pem')), requestCert: true, rejectUnauthorized: true, ca: readFileSync(tlsFixture('ca.pem')) },
      (_req, res) => res.end('[]'),
    );
    upstream.on('connection', () => connections++);
    const port = await listenOnLoopback(upstream);
    const proxy = await startConnectProxy((authority) => (authority === 'contextio.test:443' ? port : undefined));
    const { HTTP_PROXY, ...rest } = environment(proxy, { CONTEXTIO_API_URL: 'https://contextio.test/2.0', NODE_TLS_REJECT_UNAUTHORIZED: '0' });
    const gateway = runScript('src/main.ts', { ...rest, HTTPS_PROXY: HTTP_PROXY });
    try {
      await failsForClientCertificate(gateway, 'The TLS handshake with the upstream failed', () => connections);
    } finally {
      gateway.child.kill('SIGTERM');
      await gateway.exited;
      await proxy.close();
      await closeServer(upstream);
    }
  });
});

describe('npm start behind an egress proxy reached over TLS that wants a client certificate', () => {
  it('says the TLS handshake with the proxy failed, at start and to each call: one connection a call, not retried, said at error with its code', async () => {
    // Over TLS 1.3 the proxy says it wants a client certificate only once the gateway's side of the handshake is
    // done, its CONNECT written: not a proxy that closed the connection without answering (retried as one).
    const tls = (name: string) => readFileSync(tlsFixture(name));
    const { emulator, proxy } = await emulatorBehindProxy({ key: tls('key.pem'), cert: tls('localhost.pem'), requestCert: true, rejectUnauthorized: true, ca: tls('ca.pem') });
    const gateway = runScript('src/main.ts', environment(proxy, { NODE_EXTRA_CA_CERTS: tlsFixture('ca.pem') }));
    try {
      await failsForClientCertificate(gateway, `The TLS handshake with the egress proxy ${proxy.hostPort} failed`, () => proxy.counts.connections, proxy.hostPort);
      assert.equal(proxy.counts.connects, 0);
    } finally {
      gateway.child.kill('SIGTERM');
      await gateway.exited;
      await proxy.close();
      await emulator.close();
    }
  });
});

describe('npm start behind an egress proxy that stalls', () => {
  it('gives up a CONNECT left unanswered at UPSTREAM_TIMEOUT_MS, so that the connection it held serves again once the proxy answers', async () => {
    const { emulator, proxy } = await emulatorBehindProxy();
    // One connection: the stalled CONNECT holds the only one there is, as a longer stall under load holds them all.
    const gateway = runScript('src/main.ts', environment(proxy, { UPSTREAM_TIMEOUT_MS: '500', UPSTREAM_MAX_IN_FLIGHT: '1' }));
    try {
      const url = (await gateway.waitForLine(/"graphql":"([^"]+)"/))[1]!;
      // Its check of the upstream at start, answered through the proxy.
      await eventually(() => emulator.requests.length > 0, IN_MAIN);
      await proxy.refuseWith('no answer');
      const stalled = await postGraphQL<GraphQLAnswer>(url, LIST);
      assert.deepEqual(stalled.errors?.map((e) => e.extensions?.['code']), ['UPSTREAM_TIMEOUT']);
      // Its own deadline comes before the CONNECT is given up: what it says, and its line, name the proxy, which
      // is where the time went (the connection it waited for a tunnel the proxy never opened).
      assert.match(stalled.errors![0]!.message, new RegExp(`^No connection to the upstream became free or could be opened through the egress proxy ${proxy.hostPort} within 500 ms while `));
      const timedOut = () => logEntries(gateway.lines).find((e) => e['message'] === 'upstream call timed out');
      await eventually(() => timedOut() !== undefined, { ...IN_MAIN, what: 'the call said to have timed out' });
      assert.deepEqual([timedOut()!['sent'], timedOut()!['proxy']], [false, proxy.hostPort]);
      // undici would wait 300 s for the CONNECT's answer, the gateway's one upstream connection taken meanwhile.
      await eventually(() => proxy.counts.givenUp === 1, { timeoutMs: 10_000, what: 'the unanswered CONNECT given up' });
      await proxy.refuseWith(undefined);
      assert.equal((await postGraphQL<GraphQLAnswer>(url, LIST)).errors, undefined);
      assertNoSecrets(gateway.lines);
    } finally {
      gateway.child.kill('SIGTERM');
      await gateway.exited;
      await proxy.close();
      await emulator.close();
    }
  });
});

describe('npm start behind an egress proxy reached over TLS (HTTP_PROXY=https://<IP address>, its authority in NODE_EXTRA_CA_CERTS)', () => {
  const tls = (name: string) => readFileSync(tlsFixture(name));
  let emulator: Emulator;
  let proxy: ConnectProxy;
  let gateway: RunningScript;
  let url: string;

  before(async () => {
    // Its certificate names 127.0.0.1, the address the gateway is given.
    ({ emulator, proxy } = await emulatorBehindProxy({ key: tls('key.pem'), cert: tls('localhost.pem') }));
    // Its check of the upstream at start meets a proxy that cannot reach it (a 502 to its CONNECT), which the
    // warning it makes says: the check is then over before any test begins. One that succeeds says nothing, and
    // a test presenting another certificate while its answer still crossed the proxy cut it, its retry one more
    // handshake than the test's calls made.
    await proxy.refuseWith(502);
    gateway = runScript('src/main.ts', environment(proxy, { NODE_EXTRA_CA_CERTS: tlsFixture('ca.pem') }));
    url = (await gateway.waitForLine(/"graphql":"([^"]+)"/))[1]!;
    await gateway.waitForLine(/CONTEXTIO_API_URL cannot be used now/);
    await proxy.refuseWith(undefined);
  });

  after(async () => {
    gateway?.child.kill('SIGTERM');
    if (gateway) assert.equal((await gateway.exited)[0], 0, gateway.lines.join('\n'));
    await proxy?.close();
    await emulator?.close();
  });

  it('serves through the proxy over TLS, printing nothing but its log lines (no warning of Node’s about the address)', async () => {
    const ready = logEntries(gateway.lines).find((e) => e['message'] === 'gateway ready')!;
    assert.equal(ready['egressProxy'], `${proxy.hostPort} (HTTP_PROXY)`);
    await servesOneRequestACall(url, emulator, 'tls-proxied@example.com');
    assert.deepEqual(new Set(proxy.authorizations), new Set([PROXY_AUTHORIZATION]));
    assert.deepEqual(gateway.lines.filter((line) => !line.startsWith('{')), []);
    assertNoSecrets(gateway.lines);
  });

  it('answers UPSTREAM_ERROR for a proxy certificate of another host name: said to be the proxy’s, not retried, said at error with its code', async () => {
    await proxy.present(tls('other-host.pem'));
    emulator.clearRequests();
    const before = { ...proxy.counts };
    const said = new RegExp(`^The TLS certificate of the egress proxy ${proxy.hostPort} could not be verified, so the gateway refused the connection while listing accounts$`);
    const entries = await threeListsFail(gateway, url, said);
    // Refused the same on every attempt: one handshake a call, where a retried GET makes three; no CONNECT.
    assert.equal(proxy.counts.connections - before.connections, 3);
    assert.equal(proxy.counts.connects - before.connects, 0);
    assert.equal(emulator.requests.length, 0);
    const faults = entries.filter((e) => e['level'] === 'error');
    assert.deepEqual(faults.map((e) => [e['code'], e['proxy']]), [['ERR_TLS_CERT_ALTNAME_INVALID', proxy.hostPort]], JSON.stringify(entries));
    assert.match(String(faults[0]!['message']), new RegExp(`^the TLS certificate of the egress proxy ${proxy.hostPort} was refused \\(ERR_TLS_CERT_ALTNAME_INVALID\\): .*HTTP_PROXY`));
    assertNoSecrets(gateway.lines);
  });

  it('says so of an https:// upstream too (whose own certificate comes after, through the tunnel)', async () => {
    await proxy.present(tls('other-host.pem'));
    const { HTTP_PROXY, ...rest } = environment(proxy, { CONTEXTIO_API_URL: 'https://contextio.test/2.0', NODE_EXTRA_CA_CERTS: tlsFixture('ca.pem') });
    const other = runScript('src/main.ts', { ...rest, HTTPS_PROXY: HTTP_PROXY });
    try {
      const otherUrl = (await other.waitForLine(/"graphql":"([^"]+)"/))[1]!;
      const answer = await postGraphQL<GraphQLAnswer>(otherUrl, LIST);
      assert.deepEqual(answer.errors?.map((e) => [e.extensions?.['code'], e.message]), [
        ['UPSTREAM_ERROR', `The TLS certificate of the egress proxy ${proxy.hostPort} could not be verified, so the gateway refused the connection while listing accounts`],
      ]);
      assertNoSecrets(other.lines);
    } finally {
      other.child.kill('SIGTERM');
      await other.exited;
    }
  });

  it('serves again once the proxy presents its own certificate', async () => {
    await proxy.present(tls('localhost.pem'));
    assert.equal((await postGraphQL<GraphQLAnswer>(url, LIST)).errors, undefined);
  });
});

describe('npm start behind an egress proxy reached over TLS, its https:// upstream presenting a certificate the gateway does not trust', () => {
  it('says the certificate refused is the upstream’s, not the proxy’s: each TLS failure is told apart', async () => {
    const tls = (name: string) => readFileSync(tlsFixture(name));
    // Self-signed, so trusted by no process.
    const upstream = createHttpsServer({ key: tls('key.pem'), cert: tls('self-signed.pem') });
    const upstreamPort = await listenOnLoopback(upstream);
    const proxy = await startConnectProxy((authority) => (authority === 'contextio.test:443' ? upstreamPort : undefined), { key: tls('key.pem'), cert: tls('localhost.pem') });
    const { HTTP_PROXY, ...rest } = environment(proxy, { CONTEXTIO_API_URL: 'https://contextio.test/2.0', NODE_EXTRA_CA_CERTS: tlsFixture('ca.pem') });
    const gateway = runScript('src/main.ts', { ...rest, HTTPS_PROXY: HTTP_PROXY });
    try {
      const url = (await gateway.waitForLine(/"graphql":"([^"]+)"/))[1]!;
      const answer = await postGraphQL<GraphQLAnswer>(url, LIST);
      assert.deepEqual(answer.errors?.map((e) => [e.extensions?.['code'], e.message]), [
        ['UPSTREAM_ERROR', 'The upstream’s TLS certificate could not be verified, so the gateway refused the connection while listing accounts'],
      ]);
      // Its log line may reach the pipe after the answer (lines are written at their turn's end): waited for.
      await gateway.waitForLine(/"code":"DEPTH_ZERO_SELF_SIGNED_CERT"/);
      const fault = logEntries(gateway.lines).find((e) => e['code'] === 'DEPTH_ZERO_SELF_SIGNED_CERT');
      assert.match(String(fault?.['message']), /^the upstream’s TLS certificate was refused \(DEPTH_ZERO_SELF_SIGNED_CERT\)/, gateway.lines.join('\n'));
      assert.ok(proxy.counts.tunnels > 0, 'the proxy opened the tunnels the handshakes were made through');
      assertNoSecrets(gateway.lines);
    } finally {
      gateway.child.kill('SIGTERM');
      await gateway.exited;
      await proxy.close();
      await closeServer(upstream);
    }
  });
});

/** The gateway's environment with its key set at other-host.example, a name that does not resolve, and `proxy` as HTTPS_PROXY. */
const keySetEnvironment = (proxy: string) => ({
  PORT: '0',
  LOG_LEVEL: 'info',
  AUTH_JWKS_URL: 'https://other-host.example/jwks.json',
  AUTH_ISSUER: 'https://other-host.example/',
  AUTH_AUDIENCE: 'contextio-graphql',
  HTTPS_PROXY: proxy,
});

describe('npm start with its key set (AUTH_JWKS_URL) reachable only through the egress proxy (HTTPS_PROXY)', () => {
  it('fetches the keys through the proxy, at start and to verify a token: the token verifies', async () => {
    const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
    const keySet = JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' }] });
    let keySetFetches = 0;
    // The identity provider at other-host.example, the name its certificate bears; it does not resolve, so
    // only the proxy reaches it.
    const provider = createHttpsServer({ key: readFileSync(tlsFixture('key.pem')), cert: readFileSync(tlsFixture('other-host.pem')) }, (_req, res) => {
      keySetFetches++;
      res.writeHead(200, { 'content-type': 'application/json' }).end(keySet);
    });
    const providerPort = await listenOnLoopback(provider);
    const proxy = await startConnectProxy((authority) => (authority === 'other-host.example:443' ? providerPort : undefined));
    const gateway = runScript('src/main.ts', { ...keySetEnvironment(proxy.url), NODE_EXTRA_CA_CERTS: tlsFixture('ca.pem') });
    try {
      const url = (await gateway.waitForLine(/"graphql":"([^"]+)"/))[1]!;
      // Its check of the key set at start.
      await eventually(() => keySetFetches === 1, IN_MAIN);
      const token = await new SignJWT({ scope: 'contextio:admin' })
        .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
        .setIssuer('https://other-host.example/')
        .setAudience('contextio-graphql')
        .setSubject('ops')
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(privateKey);
      const answer = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify({ query: '{ __typename }' }) });
      assert.deepEqual([answer.status, await answer.json()], [200, { data: { __typename: 'Query' } }]);
      assert.equal(keySetFetches, 2);
      assert.equal(proxy.counts.tunnels, 2);
      assert.ok(gateway.lines.every((line) => !line.includes('could not be fetched')), gateway.lines.join('\n'));
    } finally {
      gateway.child.kill('SIGTERM');
      await gateway.exited;
      await proxy.close();
      await closeServer(provider);
    }
  });
});

describe('npm start with its key set (AUTH_JWKS_URL) behind an egress proxy that cannot be reached', () => {
  it('says the proxy could not be reached, naming it, as the upstream calls do, not a bare connection error', async () => {
    // A port nothing listens on: the proxy down.
    const closed = createHttpsServer();
    const port = await listenOnLoopback(closed);
    await closeServer(closed);
    const gateway = runScript('src/main.ts', keySetEnvironment(`http://proxy-user:${PROXY_PASSWORD}@127.0.0.1:${port}`));
    try {
      await gateway.waitForLine(/AUTH_JWKS_URL's key set cannot be used now/);
      const said = String(logEntries(gateway.lines).find((e) => String(e['message']).startsWith("AUTH_JWKS_URL's key set cannot be used now"))?.['message']);
      assert.ok(said.includes(`it could not be fetched and read (the egress proxy 127.0.0.1:${port} could not be reached: connect ECONNREFUSED 127.0.0.1:${port})`), said);
      assertNoSecrets(gateway.lines);
    } finally {
      gateway.child.kill('SIGTERM');
      await gateway.exited;
    }
  });
});

describe('npm start with ALL_PROXY set and no HTTP_PROXY', () => {
  it('warns at start that ALL_PROXY is not read and the upstream is reached directly, never showing its value', async () => {
    const gateway = runScript('src/main.ts', {
      PORT: '0',
      LOG_LEVEL: 'info',
      CONTEXTIO_API_URL: 'http://contextio.test/2.0',
      CONTEXTIO_CONSUMER_KEY: 'remote-key',
      CONTEXTIO_CONSUMER_SECRET: 'remote-secret',
      ALL_PROXY: `socks5://proxy-user:${PROXY_PASSWORD}@127.0.0.1:1080`,
    });
    try {
      await gateway.waitForLine(/CONTEXTIO_API_URL cannot be used now/);
      const warning = logEntries(gateway.lines).find((e) => String(e['message']).startsWith('ALL_PROXY'));
      assert.equal(
        warning?.['message'],
        'ALL_PROXY is set but not read: CONTEXTIO_API_URL is reached directly, not through it; set HTTP_PROXY to reach it through an http:// or https:// proxy (a SOCKS proxy is not supported)',
        gateway.lines.join('\n'),
      );
      assert.equal(warning?.['level'], 'warn');
      assertNoSecrets(gateway.lines);
    } finally {
      gateway.child.kill('SIGTERM');
      await gateway.exited;
    }
  });
});
