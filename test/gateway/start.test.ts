import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout } from 'node:timers/promises';
import { createServer, type Socket } from 'node:net';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { exportJWK, generateKeyPair } from 'jose';
import { startJwksServer } from '../auth/helpers.ts';
import { eventually } from '../helpers/eventually.ts';
import { closedPort, closeServer, listenOnLoopback } from '../helpers/net.ts';
import { IN_MAIN, query, REMOTE_KEY_PAIR, remoteUpstreamEnv, startMain, startRemoteUpstream } from '../helpers/main-process.ts';
import { logEntries, runScript } from '../helpers/script.ts';

/** A well-formed account id the emulator does not know: the gateway's call for it gets a 404. */
const MISSING_ACCOUNT = '0123456789abcdef01234567';

/**
 * Starts main at `LOG_LEVEL=level`, asks it for an account the upstream does not know (an upstream 404, which
 * it logs at debug), stops it, and returns everything it printed.
 */
async function linesOfAMissingAccountQuery(level: string): Promise<string[]> {
  const started = await startMain({ LOG_LEVEL: level, EMULATOR_SEED: 'none' });
  let code: number | null;
  try {
    const result = await query(started.url, `{ account(id: "${MISSING_ACCOUNT}") { id } }`);
    assert.equal((result.errors as Array<{ extensions: { code: string } }>)[0]!.extensions.code, 'NOT_FOUND');
  } finally {
    code = await started.stop();
  }
  assert.equal(code, 0, started.lines.join('\n'));
  return started.lines;
}

describe('npm start', () => {
  it('names the embedded emulator’s public address in its line when EMULATOR_PUBLIC_URL is set, and signs with the secret made up for it', async () => {
    const started = await startMain({ EMULATOR_PUBLIC_URL: 'http://devbox.lan:4010' });
    try {
      const line = started.lines.find((l) => l.includes('embedded Context.IO emulator'))!;
      assert.match(line, /"upstream":"http:\/\/127\.0\.0\.1:\d+\/2\.0","publicUrl":"http:\/\/devbox\.lan:4010\/2\.0","consumerKey":"dev-key"/);
      // Reachable beyond loopback, the emulator's secret is made up at start (and said to be, never shown): the
      // gateway calls it with that one, not the public development secret.
      assert.match(line, /"consumerSecret":"made up at start: /);
      const answer = await query(started.url, '{ accounts(first: 1) { nodes { id } } }');
      assert.equal(answer.errors, undefined, JSON.stringify(answer.errors));
      assert.equal((answer.data!['accounts'] as { nodes: unknown[] }).nodes.length, 1);
      // EMULATOR_PORT unset, it listens on a port picked at start, not the URL's, where its connect links lead: said.
      const listening = new URL(JSON.parse(line).upstream as string).port;
      const warnings = logEntries(started.lines).filter((entry) => entry['level'] === 'warn').map((entry) => String(entry['message']));
      assert.deepEqual(
        warnings.filter((message) => message.startsWith('EMULATOR_PUBLIC_URL')),
        [`EMULATOR_PUBLIC_URL names port 4010, but the embedded emulator listens on port ${listening}, picked at start (EMULATOR_PORT unset or 0): its connect links lead to the URL's port, which reaches it only through a proxy forwarding to a port that changes with every start; set EMULATOR_PORT=4010 to listen where the URL says`],
      );
    } finally {
      assert.equal(await started.stop(), 0);
    }
    // Listening where the URL says, or on a port chosen for a proxy to forward to, there is nothing to say.
    const port = await closedPort();
    for (const env of [{ EMULATOR_PUBLIC_URL: `http://devbox.lan:${port}`, EMULATOR_PORT: String(port) }, { EMULATOR_PUBLIC_URL: 'https://devbox.lan', EMULATOR_PORT: String(port) }]) {
      const quiet = await startMain(env);
      try {
        assert.doesNotMatch(quiet.lines.join('\n'), /EMULATOR_PUBLIC_URL names port/, JSON.stringify(env));
      } finally {
        assert.equal(await quiet.stop(), 0);
      }
    }
  });

  it('ignores SIGUSR1 outside development, saying so: it would open Node’s inspector to any local process', async () => {
    const started = await startMain({});
    try {
      process.kill(started.pid, 'SIGUSR1');
      await eventually(() => started.lines.some((line) => line.includes('SIGUSR1 ignored')), { ...IN_MAIN, what: 'the line saying SIGUSR1 is ignored' });
      // Node says "Debugger listening on ws://…" on stderr when it opens the inspector.
      assert.doesNotMatch(started.lines.join('\n'), /Debugger listening/);
      assert.equal((await query(started.url, '{ __typename }')).data?.['__typename'], 'Query', 'still serving');
    } finally {
      assert.equal(await started.stop(), 0);
    }
  });

  it('warns at start when EMULATOR_CONSUMER_SECRET sets the public development secret on an embedded emulator others may reach', async () => {
    // Set, the secret is kept rather than made up: anyone reaching the emulator could use its API with the public
    // key pair, past the gateway's authentication. `npm run emulator` says so; the embedded one said nothing.
    const warning = /EMULATOR_CONSUMER_SECRET is the public development secret while the embedded emulator is reachable beyond loopback/;
    const exposed = await startMain({ EMULATOR_PUBLIC_URL: 'http://devbox.lan:4010', EMULATOR_CONSUMER_SECRET: 'dev-secret', LOG_LEVEL: 'error' });
    try {
      assert.equal(logEntries(exposed.lines).filter((entry) => entry['level'] === 'warn' && warning.test(String(entry['message']))).length, 1, exposed.lines.join('\n'));
    } finally {
      assert.equal(await exposed.stop(), 0);
    }
    // Loopback only, or with a secret of its own, there is nothing to say.
    const quiet: Array<Record<string, string>> = [{ EMULATOR_CONSUMER_SECRET: 'dev-secret' }, { EMULATOR_PUBLIC_URL: 'http://devbox.lan:4010', EMULATOR_CONSUMER_SECRET: 'chosen-secret' }];
    for (const env of quiet) {
      const started = await startMain(env);
      try {
        assert.doesNotMatch(started.lines.join('\n'), warning, JSON.stringify(env));
      } finally {
        assert.equal(await started.stop(), 0);
      }
    }
  });

  it('warns of a variable that looks like a setting and is none: a misspelt AUTH_JWT_SECRET left authentication off', async () => {
    const started = await startMain({ AUTH_JWT_SECRETS: 'a-secret-of-at-least-32-characters!!' });
    try {
      const warnings = logEntries(started.lines).filter((entry) => entry['level'] === 'warn').map((entry) => entry['message']);
      assert.ok(warnings.includes('AUTH_JWT_SECRETS is not a setting and is ignored (did you mean AUTH_JWT_SECRET?)'), JSON.stringify(warnings));
      assert.doesNotMatch(started.lines.join('\n'), /a-secret-of-at-least/);
    } finally {
      assert.equal(await started.stop(), 0);
    }
    // Spelt right: the ready line says how callers are let in (nothing else at start does), never the secret.
    const authenticated = await startMain({
      AUTH_JWT_SECRET: 'a-secret-of-at-least-32-characters!!',
      // A key set behind a function host's key (Azure Functions' `?code=`): the query's values are not logged.
      AUTH_JWKS_URL: 'http://127.0.0.1:9/jwks.json?code=function-key-kept-out&x',
      AUTH_ISSUER: 'https://id.example.com/',
      // Two audiences: the line shows them as one string, as it shows one.
      AUTH_AUDIENCE: 'contextio-graphql,api://contextio-graphql',
      CORS_ORIGINS: 'https://app.example.com',
      IDE: 'false',
    });
    try {
      const ready = logEntries(authenticated.lines).find((entry) => entry['message'] === 'gateway ready')!;
      // With the IDE turned off, the line names no address for it.
      assert.ok(!('ide' in ready) && 'graphql' in ready, `no ide address beside the endpoint's: ${JSON.stringify(ready)}`);
      assert.deepEqual(
        [ready['authentication'], ready['issuer'], ready['audience'], ready['introspection'], ready['corsOrigins']],
        ['HS256 (AUTH_JWT_SECRET) and JWKS http://127.0.0.1:9/jwks.json?code=…&x', 'https://id.example.com/', 'contextio-graphql, api://contextio-graphql', false, ['https://app.example.com']],
      );
      // Port 9 answers nothing: the warning that the key set cannot be fetched names the URL the same way.
      await eventually(() => authenticated.lines.some((line) => line.includes("AUTH_JWKS_URL's key set cannot be used now")));
      assert.doesNotMatch(authenticated.lines.join('\n'), /a-secret-of-at-least|is not a setting|function-key/);
    } finally {
      assert.equal(await authenticated.stop(), 0);
    }
  });

  it('names the embedded emulator’s rate limit in its line when EMULATOR_RATE_LIMIT is set', async () => {
    const started = await startMain({ EMULATOR_RATE_LIMIT: '120' });
    try {
      const line = started.lines.find((l) => l.includes('embedded Context.IO emulator'))!;
      assert.match(line, /"consumerKey":"dev-key","rateLimitPerHour":120[,}]/);
    } finally {
      assert.equal(await started.stop(), 0);
    }
  });

  it('without CONTEXTIO_API_URL serves GraphQL against the embedded emulator, says so once, and stops cleanly', async () => {
    const started = await startMain({});
    try {
      const emulatorLines = started.lines.filter((l) => l.includes('embedded Context.IO emulator'));
      assert.equal(emulatorLines.length, 1);
      // Its base URL and the key, as `npm run emulator` prints them; never the secret.
      assert.match(emulatorLines[0]!, /"upstream":"http:\/\/127\.0\.0\.1:\d+\/2\.0","consumerKey":"dev-key"/);
      assert.doesNotMatch(started.lines.join('\n'), /dev-secret/);
      // The README's start-up lines: the emulator's, the open-mode warning, then the ready line with its URLs.
      assert.equal(started.lines.filter((l) => l.includes('"level":"warn"') && l.includes('authentication is off')).length, 1);
      const ready = JSON.parse(started.lines.find((l) => l.includes('gateway ready'))!) as Record<string, string>;
      assert.equal(ready['ide'], started.url);
      assert.equal(ready['health'], new URL('/healthz', started.url).href);
      // What runs: the package's version and Node's, for a fleet mid-deploy.
      const { version } = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
      assert.deepEqual([ready['version'], ready['node']], [version, process.version]);
      // corsOrigins only when any are set (docs/logs.md): none set, no empty list.
      assert.deepEqual([ready['authentication'], ready['introspection'], 'corsOrigins' in ready], ['off', true, false]);
      const health = await fetch(new URL('/healthz', started.url));
      assert.deepEqual(await health.json(), { status: 'ok' });
      const result = await query(started.url, '{ accounts(first: 5) { nodes { id emailAddresses sources { label status } } } }');
      assert.equal(result.errors, undefined);
      assert.ok(((result.data!['accounts'] as { nodes: unknown[] }).nodes.length) > 0, 'demo data is seeded');
    } finally {
      assert.equal(await started.stop(), 0);
    }
  });

  it('reports to no one its configuration does not name: Apollo Studio’s variables neither start reporting nor stop it from starting', async () => {
    // Without a key, APOLLO_SCHEMA_REPORTING=true alone made Apollo refuse to start.
    const environments: Array<Record<string, string>> = [{ APOLLO_SCHEMA_REPORTING: 'true' }, { APOLLO_KEY: 'service:some-graph:not-a-key', APOLLO_GRAPH_REF: 'some-graph@current', APOLLO_SCHEMA_REPORTING: 'true' }];
    for (const env of environments) {
      const started = await startMain(env);
      try {
        const result = await query(started.url, '{ accounts(first: 1) { nodes { id } } }');
        assert.equal(result.errors, undefined);
      } finally {
        assert.equal(await started.stop(), 0);
      }
      assert.doesNotMatch(started.lines.join('\n'), /usage report|schema report|apollographql|Studio/i);
    }
  });

  it('says when the embedded emulator cannot save a change: the mutation may have taken effect, a JSON log line, and exit 1 when the last save fails', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'contextio-start-'));
    const dataFile = join(dir, 'state.json');
    try {
      const started = await startMain({ EMULATOR_DATA_FILE: dataFile, EMULATOR_SEED: 'none' });
      let code: number | null;
      try {
        // A directory where the emulator's save writes its temporary file: every save fails from now on.
        await mkdir(`${dataFile}.${started.pid}.tmp`);
        const created = await query(started.url, 'mutation { createConnectToken(input: { callbackUrl: "https://app.example.com/cb" }) { token } }');
        assert.deepEqual((created.errors as { message: string; extensions?: Record<string, unknown> }[] | undefined)?.map((e) => [e.extensions?.['code'], e.message]), [
          ['UPSTREAM_ERROR', 'The upstream failed with HTTP 500 while creating a connect token: the request may have taken effect'],
        ]);
      } finally {
        code = await started.stop();
      }
      assert.equal(code, 1, started.lines.join('\n'));
      const entries = logEntries(started.lines);
      assert.deepEqual(
        entries.filter((entry) => entry['message'] === 'the embedded emulator could not save its state to EMULATOR_DATA_FILE').map((entry) => entry['level']),
        ['error', 'error'],
        'the change’s save, then the one on the way out',
      );
      const failed = entries.find((entry) => entry['message'] === 'shutdown failed')!;
      assert.equal(failed['part'], 'emulator');
      assert.match(String(failed['error']), /could not save state on closing \(the changes since the last save are lost\)/);
      assert.deepEqual([entries.at(-1)!['message'], entries.at(-1)!['exitCode']], ['stopped', 1]);
      assert.deepEqual(started.lines.filter((line) => !line.startsWith('{')), [], 'every line a JSON log line');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('with LOG_LEVEL=error still announces the start-up lines (which upstream, authentication off, where it listens) and the shutdown’s first and last, and nothing else below error', async () => {
    const lines = await linesOfAMissingAccountQuery('error');
    assert.deepEqual(
      logEntries(lines).map((entry) => [entry['level'], String(entry['message']).split(/[:(]/)[0]]),
      [
        ['info', 'CONTEXTIO_API_URL is not set'],
        ['warn', 'authentication is off '],
        ['info', 'gateway ready'],
        // A log without `stopped` is of a process killed or crashed (docs/logs.md): at any level, or a graceful
        // stop read at warn or error would look like one.
        ['info', 'shutting down'],
        ['info', 'stopped'],
      ],
      'the operation line and the debug line are dropped',
    );
  });

  // pm2's --wait-ready (and its reload) waits for the app's process.send('ready') before it takes the app for up and
  // stops the old one: without it, pm2 waited its listen timeout, then took a gateway for up whether it was or not.
  it('tells a parent process listening on an IPC channel (pm2 --wait-ready) "ready" once it serves', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      env: { PATH: process.env['PATH'] ?? '', PORT: '0', LOG_LEVEL: 'info', EMULATOR_SEED: 'none' },
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    try {
      // Bounded: a gateway that says nothing would hold the test to the file's time limit.
      const [message] = (await Promise.race([
        once(child, 'message'),
        once(child, 'exit').then(() => ['exited']),
        eventually(() => /"gateway ready"/.test(stderr), IN_MAIN).then(() => setTimeout(5_000, ['nothing said 5 s after its ready line'])),
      ])) as [unknown];
      assert.equal(message, 'ready', stderr);
      await eventually(() => /"gateway ready"/.test(stderr), IN_MAIN);
      const health = /"health":"([^"]+)"/.exec(stderr)![1]!;
      assert.equal((await fetch(health)).status, 200, 'it serves once it said so');
    } finally {
      child.kill('SIGTERM');
      await once(child, 'close');
    }
  });

  it('warns at start, at any log level, when the embedded emulator runs in a cluster worker (pm2 -i): each worker has its own accounts, on a port the workers share', async () => {
    // Two workers' emulators took turns at one port: an account one of them created was NOT_FOUND by the other
    // for every second read, and nothing said why.
    const run = runScript(fileURLToPath(new URL('./fixtures/cluster-primary.mjs', import.meta.url)), { PORT: '0', LOG_LEVEL: 'error', EMULATOR_SEED: 'none' });
    try {
      await run.waitForLine(/"gateway ready"/);
      const warnings = logEntries(run.lines).filter((entry) => String(entry['message']).startsWith('the embedded emulator runs in a cluster worker'));
      assert.deepEqual(warnings.map((entry) => entry['level']), ['warn'], run.lines.join('\n'));
    } finally {
      run.child.kill('SIGTERM');
      const [code] = await run.exited;
      assert.equal(code, 0, run.lines.join('\n'));
    }
  });

  it('warns at start, at any log level, when OPERATION_TIMEOUT_MS is not above UPSTREAM_TIMEOUT_MS (the breaker would never see a hung upstream)', async () => {
    const started = await startMain({ LOG_LEVEL: 'error', EMULATOR_SEED: 'none', OPERATION_TIMEOUT_MS: '5000', UPSTREAM_TIMEOUT_MS: '5000' });
    try {
      const warnings = logEntries(started.lines).filter((entry) => String(entry['message']).startsWith('OPERATION_TIMEOUT_MS is not above UPSTREAM_TIMEOUT_MS'));
      assert.deepEqual(
        warnings.map(({ level, operationTimeoutMs, upstreamTimeoutMs }) => ({ level, operationTimeoutMs, upstreamTimeoutMs })),
        [{ level: 'warn', operationTimeoutMs: 5000, upstreamTimeoutMs: 5000 }],
      );
      assert.match(String(warnings[0]!['message']), /set UPSTREAM_TIMEOUT_MS below OPERATION_TIMEOUT_MS$/);
    } finally {
      assert.equal(await started.stop(), 0);
    }
  });

  it('warns after its ready line, at any log level, when AUTH_JWKS_URL’s key set cannot be had, instead of at the first token', async () => {
    const jwks = await startJwksServer([]);
    jwks.setFailing(true);
    try {
      const started = await startMain({ LOG_LEVEL: 'error', EMULATOR_SEED: 'none', AUTH_JWKS_URL: jwks.url, AUTH_ISSUER: 'https://issuer.test', AUTH_AUDIENCE: 'contextio-graphql' });
      try {
        const warning = /AUTH_JWKS_URL's key set cannot be used now: it could not be fetched and read \(the key set's URL answered 500, not 200\)/;
        await eventually(() => started.lines.some((line) => warning.test(line)), { ...IN_MAIN, what: 'the key set warning' });
        const entries = logEntries(started.lines);
        const at = entries.findIndex((entry) => warning.test(String(entry['message'])));
        assert.deepEqual([entries[at]!['level'], entries[at]!['jwksUrl']], ['warn', jwks.url]);
        const ready = entries.findIndex((entry) => entry['message'] === 'gateway ready');
        assert.ok(ready < at, 'the ready line is not held up by the check');
        // A key set alone is authentication on, said as such.
        assert.equal(entries[ready]!['authentication'], `JWKS ${jwks.url}`);
        assert.equal(jwks.fetches, 1);
      } finally {
        assert.equal(await started.stop(), 0);
      }
      // A key set that can be used: nothing said of it.
      const { publicKey } = await generateKeyPair('RS256');
      jwks.setKeys([{ ...(await exportJWK(publicKey)), kid: 'k', alg: 'RS256', use: 'sig' }]);
      jwks.setFailing(false);
      const usable = await startMain({ LOG_LEVEL: 'error', EMULATOR_SEED: 'none', AUTH_JWKS_URL: jwks.url, AUTH_ISSUER: 'https://issuer.test', AUTH_AUDIENCE: 'contextio-graphql' });
      try {
        await eventually(() => jwks.fetches === 2, { ...IN_MAIN, what: 'the key set checked' });
        // A round trip through the gateway after the key set was served: the check's line, had it one, is written by then.
        assert.equal((await fetch(new URL('/healthz', usable.url))).status, 200);
      } finally {
        assert.equal(await usable.stop(), 0);
      }
      assert.deepEqual(usable.lines.filter((line) => line.includes('cannot be used now')), [], usable.lines.join('\n'));
    } finally {
      await jwks.close();
    }
  });

  it('with LOG_LEVEL=debug prints debug lines too: an upstream error response', async () => {
    const lines = await linesOfAMissingAccountQuery('debug');
    const debug = logEntries(lines).filter((entry) => entry['level'] === 'debug' && entry['message'] === 'upstream error response');
    assert.deepEqual(
      debug.map(({ method, path, status }) => ({ method, path, status })),
      [{ method: 'GET', path: `/accounts/${MISSING_ACCOUNT}`, status: 404 }],
    );
  });

  it('with CONTEXTIO_API_URL uses that upstream and its key pair', async () => {
    const upstream = await startRemoteUpstream();
    try {
      const started = await startMain({
        ...remoteUpstreamEnv(upstream),
        // Left from a development .env: not in force, and said so.
        EMULATOR_DATA_FILE: '/nonexistent/emulator.json',
      });
      try {
        upstream.store.createAccount({ email: 'remote@example.com' });
        const result = await query(started.url, '{ accounts { nodes { emailAddresses } } }');
        assert.deepEqual(result.data, { accounts: { nodes: [{ emailAddresses: ['remote@example.com'] }] } });
        assert.equal(started.lines.filter((l) => l.includes('embedded Context.IO emulator')).length, 0);
        // The ready line names the upstream it calls.
        const ready = JSON.parse(started.lines.find((l) => l.includes('gateway ready'))!) as Record<string, string>;
        assert.equal(ready['upstream'], upstream.url);
        assert.ok(started.lines.every((l) => !l.includes(REMOTE_KEY_PAIR.consumerSecret)), 'no line holds the upstream’s secret');
        assert.ok(started.lines.every((l) => !l.includes('names no API version')), 'no line says the upstream URL names no API version');
        const ignored = logEntries(started.lines).filter((entry) => String(entry['message']).includes('ignored: CONTEXTIO_API_URL is set'));
        assert.deepEqual(ignored.map((entry) => [entry['level'], entry['message']]), [['warn', 'EMULATOR_DATA_FILE is ignored: CONTEXTIO_API_URL is set, so the embedded emulator does not run']]);
      } finally {
        assert.equal(await started.stop(), 0);
      }

      // The version left out, or not last (a resource's URL pasted in: the gateway then asks for
      // …/2.0/accounts/accounts): a warning at start, and each call fails as a configuration fault, not as data
      // the caller asked for that does not exist.
      for (const unversionedUrl of [upstream.origin, `${upstream.url}/accounts`]) {
        const unversioned = await startMain({
          ...remoteUpstreamEnv(upstream),
          CONTEXTIO_API_URL: unversionedUrl,
        });
        try {
          const warning = logEntries(unversioned.lines).find((entry) => entry['level'] === 'warn' && String(entry['message']).includes('names no API version'));
          assert.equal(warning?.['upstream'], unversionedUrl, unversioned.lines.join('\n'));
          const result = await query(unversioned.url, '{ accounts { nodes { id } } }');
          assert.deepEqual(result.errors?.map((e) => e.extensions?.['code']), ['UPSTREAM_ERROR']);
        } finally {
          assert.equal(await unversioned.stop(), 0);
        }
      }
    } finally {
      await upstream.close();
    }
  });

  it('with CONTEXTIO_API_URL checks the upstream with one call after its ready line: a key pair it refuses is said at any log level', async () => {
    const upstream = await startRemoteUpstream();
    try {
      const calls = () => upstream.requests.map((r) => [r.method, r.path, r.query, r.status]);
      const good = await startMain(remoteUpstreamEnv(upstream));
      try {
        await eventually(() => upstream.requests.length > 0, IN_MAIN);
        assert.deepEqual(calls(), [['GET', '/accounts', 'limit=1&offset=0', 200]]);
      } finally {
        assert.equal(await good.stop(), 0);
      }
      assert.equal(good.lines.filter((l) => l.includes('cannot be used now')).length, 0, good.lines.join('\n'));

      upstream.clearRequests();
      // The secret wrong: every operation would fail; the health check (the gateway's own) would not say so.
      const wrong = await startMain({
        LOG_LEVEL: 'error',
        CONTEXTIO_API_URL: upstream.url,
        CONTEXTIO_CONSUMER_KEY: REMOTE_KEY_PAIR.consumerKey,
        CONTEXTIO_CONSUMER_SECRET: 'not-the-secret',
        EMULATOR_SEED: 'demo',
      });
      try {
        await eventually(() => wrong.lines.some((l) => l.includes('cannot be used now')), IN_MAIN);
        const warning = logEntries(wrong.lines).find((entry) => String(entry['message']).startsWith('CONTEXTIO_API_URL cannot be used now'))!;
        assert.equal(warning['level'], 'warn');
        assert.match(String(warning['message']), /^CONTEXTIO_API_URL cannot be used now: The upstream refused the gateway’s credentials while listing accounts\. Operations that need it fail until it can$/);
        assert.equal(warning['upstream'], upstream.url);
        // The client's own line of the refusal names the check as an operation's id would (an operator tells
        // it from an operation's), and the ignored emulator setting is said at this level too.
        const refused = logEntries(wrong.lines).find((entry) => String(entry['message']).startsWith('the upstream refused the gateway’s API key'));
        assert.equal(refused?.['requestId'], 'start-check', wrong.lines.join('\n'));
        assert.ok(wrong.lines.some((l) => l.includes('EMULATOR_SEED is ignored: CONTEXTIO_API_URL is set')), wrong.lines.join('\n'));
        assert.deepEqual(calls(), [['GET', '/accounts', 'limit=1&offset=0', 401]]);
        assert.ok(wrong.lines.every((l) => !l.includes('not-the-secret')), 'no line holds the refused secret');
      } finally {
        assert.equal(await wrong.stop(), 0);
      }
    } finally {
      await upstream.close();
    }
  });

  it('with CONTEXTIO_API_URL says nothing of the upstream when a shutdown cuts its check short', async () => {
    // An upstream that takes the check's request and never answers it.
    const sockets: Socket[] = [];
    let arrived!: () => void;
    const requested = new Promise<void>((resolve) => (arrived = resolve));
    const silent = createServer((socket) => {
      sockets.push(socket);
      socket.on('error', () => {});
      socket.once('data', () => arrived());
    });
    const port = await listenOnLoopback(silent);
    try {
      const started = await startMain({ CONTEXTIO_API_URL: `http://127.0.0.1:${port}/2.0`, CONTEXTIO_CONSUMER_KEY: 'k', CONTEXTIO_CONSUMER_SECRET: 's' });
      await requested;
      assert.equal(await started.stop(), 0, started.lines.join('\n'));
      assert.deepEqual(started.lines.filter((l) => l.includes('cannot be used now')), [], 'a check cut short is no problem of the upstream');
      assert.equal(logEntries(started.lines).at(-1)!['message'], 'stopped');
    } finally {
      for (const socket of sockets) socket.destroy();
      await closeServer(silent);
    }
  });

  it('runs graphql-js in production mode unless NODE_ENV says otherwise', async () => {
    const preload = [new URL('./fixtures/graphql-node-env.mjs', import.meta.url).href];
    for (const [env, expected] of [
      [{}, 'production'],
      [{ NODE_ENV: '' }, 'production'],
      [{ NODE_ENV: 'development' }, 'development'],
      // Trimmed, as every setting is: graphql-js compares it exactly.
      [{ NODE_ENV: ' production\n' }, 'production'],
      [{ NODE_ENV: ' ' }, 'production'],
    ] as const) {
      const started = await startMain(env, preload);
      try {
        assert.deepEqual(started.lines.filter((l) => l.startsWith('graphql-js saw')), [`graphql-js saw NODE_ENV=${expected}`], JSON.stringify(env));
      } finally {
        assert.equal(await started.stop(), 0);
      }
    }
  });

});
