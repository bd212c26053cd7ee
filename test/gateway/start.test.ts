import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Socket } from 'node:net';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { exportJWK, generateKeyPair } from 'jose';
import { startEmulator } from '../../src/emulator/index.ts';
import { startJwksServer } from '../auth/helpers.ts';
import { eventually } from '../helpers/eventually.ts';
import { closedPort, closeServer, listenOnLoopback } from '../helpers/net.ts';
import { logEntries, runScript, type RunningScript } from '../helpers/script.ts';
import { startSlowDownload, type SlowRead } from '../helpers/stack.ts';

interface Started {
  lines: string[];
  pid: number;
  url: string;
  /** Sends `signal` (SIGTERM unless told) and resolves to the exit code once all its output has been read. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Runs `src/main.ts` as `npm start` does (without the build step) and waits for its ready line. */
async function startMain(env: Record<string, string>, preload: string[] = []): Promise<Started> {
  const run = runScript('src/main.ts', { PORT: '0', LOG_LEVEL: 'info', ...env }, preload);
  const [, url] = await run.waitForLine(/"graphql":"([^"]+)"/);
  return { lines: run.lines, pid: run.child.pid!, url: url!, stop: stopper(run) };
}

/** Stops a started `src/main.ts` with `signal` and resolves to its exit code once all it printed is read. */
function stopper(run: RunningScript): (signal?: NodeJS.Signals) => Promise<number | null> {
  return async (signal = 'SIGTERM') => {
    run.child.kill(signal);
    const [code] = await run.exited;
    return code;
  };
}

/** A well-formed account id the emulator does not know: the gateway's call for it gets a 404. */
const MISSING_ACCOUNT = '0123456789abcdef01234567';

async function query(url: string, q: string) {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: q }) });
  return (await response.json()) as { data?: Record<string, unknown>; errors?: Array<{ extensions?: Record<string, unknown> }> };
}

/** How long to wait for what main does: a process of its own, started under tsx, on a machine that may be busy. */
const IN_MAIN = { timeoutMs: 30_000 };

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

/**
 * Main against an emulator of the test's own, with an operation in flight on an account whose upstream
 * request hangs (its deadlines far off), and `SHUTDOWN_GRACE_MS=shutdownGraceMs`. The operation's answer, or
 * `'connection closed'` when it got none.
 */
async function withOperationInFlight(
  shutdownGraceMs: string,
  run: (started: Started, inFlight: Promise<Awaited<ReturnType<typeof query>> | 'connection closed'>) => Promise<void>,
): Promise<void> {
  const upstream = await startEmulator({ port: 0, seed: 'none', consumerKey: 'remote-key', consumerSecret: 'remote-secret' });
  try {
    const { id } = upstream.store.createAccount({ email: 'stuck@example.com' });
    upstream.addFault({ path: `/accounts/${id}`, hang: true });
    const started = await startMain({
      CONTEXTIO_API_URL: upstream.url,
      CONTEXTIO_CONSUMER_KEY: 'remote-key',
      CONTEXTIO_CONSUMER_SECRET: 'remote-secret',
      SHUTDOWN_GRACE_MS: shutdownGraceMs,
      UPSTREAM_TIMEOUT_MS: '120000',
      OPERATION_TIMEOUT_MS: '600000',
    });
    // Its check of the upstream at start answered first: the request in flight below is then the operation's.
    await eventually(() => upstream.requests.length > 0, IN_MAIN);
    const inFlight = query(started.url, `{ account(id: "${id}") { id } }`).catch(() => 'connection closed' as const);
    await eventually(() => upstream.inFlight > 0, IN_MAIN);
    await run(started, inFlight);
  } finally {
    await upstream.close();
  }
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
      AUTH_AUDIENCE: 'contextio-graphql',
      CORS_ORIGINS: 'https://app.example.com',
    });
    try {
      const ready = logEntries(authenticated.lines).find((entry) => entry['message'] === 'gateway ready')!;
      assert.deepEqual(
        [ready['authentication'], ready['issuer'], ready['audience'], ready['introspection'], ready['corsOrigins']],
        ['HS256 (AUTH_JWT_SECRET) and JWKS http://127.0.0.1:9/jwks.json?code=…&x', 'https://id.example.com/', 'contextio-graphql', false, ['https://app.example.com']],
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

  // The two signals `src/main.ts` stops on: SIGTERM from a process manager, SIGINT from Ctrl-C.
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`on ${signal} persists the embedded emulator’s state to EMULATOR_DATA_FILE, says which signal stopped it, and exits 0`, async () => {
      const dir = await mkdtemp(join(tmpdir(), 'contextio-start-'));
      const dataFile = join(dir, 'state.json');
      try {
        const started = await startMain({ EMULATOR_DATA_FILE: dataFile, EMULATOR_SEED: 'none' });
        let token: string;
        let code: number | null;
        try {
          const created = await query(started.url, 'mutation { createConnectToken(input: { callbackUrl: "https://app.example.com/cb" }) { token } }');
          token = (created.data!['createConnectToken'] as { token: string }).token;
          // The emulator saves after every change as well: once that save is on disk the file is removed,
          // so that only the save at shutdown can bring it back.
          await eventually(async () => (await readFile(dataFile, 'utf8').catch(() => '')).includes(token), { ...IN_MAIN, what: `${dataFile} to hold ${token}` });
          await rm(dataFile);
        } finally {
          code = await started.stop(signal);
        }
        assert.equal(code, 0, started.lines.join('\n'));
        const shutdown = logEntries(started.lines).filter((entry) => entry['message'] === 'shutting down');
        assert.deepEqual(
          shutdown.map((entry) => ({ level: entry['level'], signal: entry['signal'] })),
          [{ level: 'info', signal }],
        );
        const last = logEntries(started.lines).at(-1)!;
        assert.deepEqual([last['level'], last['message'], last['exitCode']], ['info', 'stopped', 0], 'the last line says the shutdown ended');
        assert.match(await readFile(dataFile, 'utf8'), new RegExp(token));
        assert.deepEqual((await readdir(dir)).filter((f) => f !== 'state.json'), [], 'no temporary file left behind');
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  }

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

  it('on a second signal during the grace period exits 1 at once instead of waiting for operations in flight', async () => {
    // A grace period far longer than the test may take: only the second signal can end the process in time.
    await withOperationInFlight('600000', async (started, inFlight) => {
      started.stop('SIGTERM').catch(() => undefined);
      await eventually(() => started.lines.some((l) => l.includes('shutting down')), IN_MAIN);
      // Another signal than the first: an operator, not npm passing the first one on (next test).
      assert.equal(await started.stop('SIGINT'), 1, started.lines.join('\n'));
      const forced = logEntries(started.lines).filter((entry) => String(entry['message']).startsWith('second signal during shutdown'));
      assert.deepEqual(forced.map((entry) => ({ level: entry['level'], signal: entry['signal'] })), [{ level: 'warn', signal: 'SIGINT' }]);
      assert.equal(await inFlight, 'connection closed');
    });
  });

  it('on a second signal while the embedded emulator’s save hangs (a disk that hangs), exits 1 instead of waiting on it for ever', async () => {
    await withSaveUnderWay('hang-saves-after-first.mjs', async (started) => {
      // Without a bound on the wait for the save, this never ends.
      const hung = new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 20_000).unref());
      assert.equal(await Promise.race([started.stop('SIGINT'), hung]), 1, started.lines.join('\n'));
      assert.equal(logEntries(started.lines).filter((entry) => String(entry['message']).startsWith('second signal during shutdown')).length, 1);
    });
  });

  it('on a second signal while the embedded emulator’s save is under way (a slow disk), exits 1 once the save is done: the change is kept', async () => {
    await withSaveUnderWay('hold-saves-until-sigusr2.mjs', async (started, dataFile, created) => {
      const exited = started.stop('SIGINT');
      await eventually(() => started.lines.some((l) => l.includes('second signal during shutdown')), IN_MAIN);
      // The disk finishes the save the forced stop waits for.
      process.kill(started.pid, 'SIGUSR2');
      assert.equal(await exited, 1, started.lines.join('\n'));
      const saved = JSON.stringify(JSON.parse(await readFile(dataFile, 'utf8')));
      assert.match(saved, /app\.example\.com\/cb/, 'the change whose save was under way is in the data file');
      await created;
    });
  });

  it('takes a signal repeated within a second (the process group signalled: directly and again through npm) as one, and shuts down gracefully', async () => {
    await withOperationInFlight('1000', async (started, inFlight) => {
      started.stop('SIGINT').catch(() => undefined);
      // npm's copy arrives just after the gateway handled its own (two signals sent together would merge).
      await eventually(() => started.lines.some((l) => l.includes('shutting down')), IN_MAIN);
      assert.equal(await started.stop('SIGINT'), 0, started.lines.join('\n'));
      // Answered at the end of the grace period, not cut off.
      const answer = await inFlight;
      assert.notEqual(answer, 'connection closed');
      assert.deepEqual(((answer as { errors: Array<{ extensions: { code: string } }> }).errors).map((e) => e.extensions.code), ['UPSTREAM_TIMEOUT']);
      assert.equal(logEntries(started.lines).filter((entry) => String(entry['message']).startsWith('second signal')).length, 0);
      // Said, though: one more such signal would stop the gateway at once.
      const repeated = logEntries(started.lines).filter((entry) => String(entry['message']).startsWith('the same signal again'));
      assert.deepEqual(repeated.map((entry) => ({ level: entry['level'], signal: entry['signal'] })), [{ level: 'info', signal: 'SIGINT' }]);
    });
  });

  it('writes the operation line of an answer cut at the end of the grace period before it exits', { timeout: 60_000 }, async () => {
    const upstream = await startEmulator({ port: 0, seed: 'none', consumerKey: 'remote-key', consumerSecret: 'remote-secret' });
    let download: SlowRead | undefined;
    try {
      const started = await startMain({
        CONTEXTIO_API_URL: upstream.url,
        CONTEXTIO_CONSUMER_KEY: 'remote-key',
        CONTEXTIO_CONSUMER_SECRET: 'remote-secret',
        SHUTDOWN_GRACE_MS: '200',
      });
      download = await startSlowDownload(upstream, started.url);
      assert.equal(await started.stop(), 0, started.lines.join('\n'));
      const operations = logEntries(started.lines).filter((entry) => entry['message'] === 'operation');
      assert.deepEqual(operations.map((entry) => [entry['status'], entry['cutAtShutdown']]), [[null, true]]);
    } finally {
      download?.socket.destroy();
      await upstream.close();
    }
  });

  it('with SHUTDOWN_DRAIN_MS, serves new connections on SIGTERM with /healthz at 503, then exits cleanly', { timeout: 30_000 }, async () => {
    const run = runScript('src/main.ts', { PORT: '0', LOG_LEVEL: 'info', EMULATOR_SEED: 'none', SHUTDOWN_DRAIN_MS: '3000' });
    const closed = once(run.child, 'close');
    const [, url] = await run.waitForLine(/"graphql":"([^"]+)"/);
    run.child.kill('SIGTERM');
    await run.waitForLine(/"message":"draining/);
    const health = await fetch(new URL('/healthz', url));
    assert.equal(health.status, 503);
    assert.deepEqual(await query(url!, '{ __typename }'), { data: { __typename: 'Query' } });
    // The embedded emulator is closed after the gateway: operations the drain admits still reach it.
    assert.deepEqual(await query(url!, '{ accounts { nodes { id } } }'), { data: { accounts: { nodes: [] } } });
    const [code] = await run.exited;
    await closed;
    assert.equal(code, 0, run.lines.join('\n'));
  });

  it('keeps serving when whatever reads its log goes away (a closed pipe), and still stops cleanly', async () => {
    const run = runScript('src/main.ts', { PORT: '0', LOG_LEVEL: 'info', EMULATOR_SEED: 'none' });
    const stop = stopper(run);
    const [, url] = await run.waitForLine(/"graphql":"([^"]+)"/);
    run.child.stderr!.destroy();
    try {
      // Each answered operation writes a log line to the closed pipe.
      for (let i = 0; i < 20; i++) assert.deepEqual(await query(url!, '{ __typename }'), { data: { __typename: 'Query' } });
      assert.equal(run.child.exitCode, null, 'still running');
    } finally {
      assert.equal(await stop('SIGTERM'), 0);
    }
  });

  it('with CONTEXTIO_API_URL uses that upstream and its key pair', async () => {
    const upstream = await startEmulator({ port: 0, seed: 'none', consumerKey: 'remote-key', consumerSecret: 'remote-secret' });
    try {
      const started = await startMain({
        CONTEXTIO_API_URL: upstream.url,
        CONTEXTIO_CONSUMER_KEY: 'remote-key',
        CONTEXTIO_CONSUMER_SECRET: 'remote-secret',
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
        assert.ok(started.lines.every((l) => !l.includes('remote-secret')), 'no line holds the upstream’s secret');
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
          CONTEXTIO_API_URL: unversionedUrl,
          CONTEXTIO_CONSUMER_KEY: 'remote-key',
          CONTEXTIO_CONSUMER_SECRET: 'remote-secret',
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
    const upstream = await startEmulator({ port: 0, seed: 'none', consumerKey: 'remote-key', consumerSecret: 'remote-secret' });
    try {
      const calls = () => upstream.requests.map((r) => [r.method, r.path, r.query, r.status]);
      const good = await startMain({ CONTEXTIO_API_URL: upstream.url, CONTEXTIO_CONSUMER_KEY: 'remote-key', CONTEXTIO_CONSUMER_SECRET: 'remote-secret' });
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
        CONTEXTIO_CONSUMER_KEY: 'remote-key',
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

  it('logs a source_callback_url the embedded emulator could not POST as a JSON line at warn, naming its host alone', async () => {
    const started = await startMain({ EMULATOR_SEED: 'none' });
    let code: number | null;
    try {
      // .invalid never resolves (RFC 6761): the call fails at its lookup.
      const created = await query(
        started.url,
        'mutation { createConnectToken(input: { callbackUrl: "https://app.example.com/cb", email: "ada@example.com", sourceCallbackUrl: "http://app.invalid/done?key=app-secret" }) { token browserRedirectUrl } }',
      );
      const { token, browserRedirectUrl } = created.data!['createConnectToken'] as { token: string; browserRedirectUrl: string };
      const connected = await fetch(browserRedirectUrl, { method: 'POST', body: new URLSearchParams({ port: '993' }), redirect: 'manual' });
      assert.equal(connected.status, 303);
      assert.equal(connected.headers.get('location'), `https://app.example.com/cb?contextio_token=${token}`);
      await eventually(() => started.lines.some((l) => l.includes('could not POST a source_callback_url')), IN_MAIN);
    } finally {
      code = await started.stop();
    }
    assert.equal(code, 0, started.lines.join('\n'));
    const failed = logEntries(started.lines).filter((entry) => entry['message'] === 'the embedded emulator could not POST a source_callback_url');
    assert.deepEqual(failed.map((entry) => entry['level']), ['warn']);
    assert.match(String(failed[0]!['error']), /^source callback to app\.invalid failed: /);
    assert.doesNotMatch(started.lines.join('\n'), /app-secret/);
  });

  it('logs the embedded emulator’s internal errors as JSON lines at error, its stack only in development, the connect token left out', async () => {
    for (const nodeEnv of ['production', 'development']) {
      const preload = [new URL('./fixtures/emulator-internal-errors.mjs', import.meta.url).href];
      const started = await startMain({ NODE_ENV: nodeEnv }, preload);
      let code: number | null;
      try {
        const answer = await query(started.url, '{ accounts(first: 1) { nodes { id } } }');
        assert.equal(answer.errors?.[0]?.extensions?.['code'], 'UPSTREAM_ERROR', JSON.stringify(answer));
        // The API's path names a connect token too: a bearer capability, as on the page.
        const read = await query(started.url, '{ connectToken(token: "secret-api-token") { token } }');
        assert.equal(read.errors?.[0]?.extensions?.['code'], 'UPSTREAM_ERROR', JSON.stringify(read));
        const [, emulatorUrl] = /"upstream":"([^"]+)"/.exec(started.lines.join('\n'))!;
        const page = await fetch(`${new URL(emulatorUrl!).origin}/connect/secret-connect-token`);
        await page.body?.cancel();
        assert.equal(page.status, 500);
        await eventually(() => started.lines.filter((l) => l.includes('injected emulator fault')).length === 3, IN_MAIN);
      } finally {
        code = await started.stop();
      }
      assert.equal(code, 0, started.lines.join('\n'));
      assert.deepEqual(started.lines.filter((l) => !l.startsWith('{')), [], started.lines.join('\n'));
      const faults = logEntries(started.lines).filter((entry) => String(entry['error']).includes('injected emulator fault'));
      assert.deepEqual(faults.map((entry) => [entry['level'], entry['request'], typeof entry['stack']]), [
        ['error', 'GET /2.0/accounts', nodeEnv === 'development' ? 'string' : 'undefined'],
        ['error', 'GET /2.0/connect_tokens/{token}', nodeEnv === 'development' ? 'string' : 'undefined'],
        ['error', 'GET /connect/{token}', nodeEnv === 'development' ? 'string' : 'undefined'],
      ]);
      assert.doesNotMatch(started.lines.join('\n'), /secret-connect-token|secret-api-token/);
    }
  });

  for (const [crash, env] of [
    ['an uncaught exception', {}],
    ['an unhandled rejection', { CRASH_BY: 'rejection' }],
  ] as const) {
    it(`on ${crash} writes it as one JSON line at error, its stack only in development, and exits 1`, async () => {
      for (const nodeEnv of ['production', 'development']) {
        const preload = [new URL('./fixtures/crash-on-sigusr2.mjs', import.meta.url).href];
        const started = await startMain({ ...env, NODE_ENV: nodeEnv, EMULATOR_SEED: 'none' }, preload);
        const code = await started.stop('SIGUSR2');
        assert.equal(code, 1, started.lines.join('\n'));
        // Every line a log collector reads is JSON: Node's own plain-text report is not among them.
        assert.deepEqual(started.lines.filter((l) => !l.startsWith('{')), [], started.lines.join('\n'));
        const crashes = logEntries(started.lines).filter((entry) => entry['level'] === 'error');
        assert.equal(crashes.length, 1, started.lines.join('\n'));
        assert.match(String(crashes[0]!['error']), /injected crash/);
        assert.equal(typeof crashes[0]!['stack'], nodeEnv === 'development' ? 'string' : 'undefined', nodeEnv);
      }
    });
  }

  it('writes a warning Node emits (a deprecated API a dependency calls) as one JSON line at warn, not as plain text among the JSON lines, and serves on; NODE_NO_WARNINGS=1 still silences it', async () => {
    const preload = [new URL('./fixtures/warning-on-sigusr2.mjs', import.meta.url).href];
    for (const silenced of [false, true]) {
      const started = await startMain({ EMULATOR_SEED: 'none', LOG_LEVEL: 'warn', ...(silenced ? { NODE_NO_WARNINGS: '1' } : {}) }, preload);
      let code: number | null;
      try {
        process.kill(started.pid, 'SIGUSR2');
        await eventually(() => started.lines.some((l) => l.includes('"fixture":"warning emitted"')), { what: 'the warning to be emitted', ...IN_MAIN });
        assert.deepEqual((await query(started.url, '{ __typename }')).data, { __typename: 'Query' });
      } finally {
        code = await started.stop();
      }
      // Stopped, every line it held is written.
      assert.equal(code, 0, started.lines.join('\n'));
      assert.deepEqual(started.lines.filter((l) => !l.startsWith('{')), [], started.lines.join('\n'));
      const warnings = logEntries(started.lines).filter((entry) => String(entry['message']).includes('injected warning'));
      assert.deepEqual(
        warnings.map((entry) => [entry['level'], entry['message'], entry['warning'], entry['code']]),
        silenced ? [] : [['warn', 'Node warning: injected warning: this API is deprecated', 'DeprecationWarning', 'DEP_INJECTED']],
        `NODE_NO_WARNINGS ${silenced ? 'set' : 'unset'}`,
      );
    }
  });

  it('on an uncaught throw of an object without a prototype still writes its JSON line, without its properties, and exits 1', async () => {
    const preload = [new URL('./fixtures/crash-on-sigusr2.mjs', import.meta.url).href];
    const started = await startMain({ CRASH_BY: 'null-prototype', EMULATOR_SEED: 'none' }, preload);
    const code = await started.stop('SIGUSR2');
    assert.equal(code, 1, started.lines.join('\n'));
    assert.deepEqual(started.lines.filter((l) => !l.startsWith('{')), [], started.lines.join('\n'));
    const crashes = logEntries(started.lines).filter((entry) => entry['level'] === 'error');
    assert.deepEqual(crashes.map((entry) => [entry['message'], entry['error']]), [['crashed: exiting', '[object Object]']], started.lines.join('\n'));
    assert.doesNotMatch(started.lines.join('\n'), /injected-secret/);
  });

  it('refuses an argument (npm start -- --port 5000) with one line saying it is set through the environment, and exits 1: it was ignored, and the gateway listened on 4000', async () => {
    const { code, stderr } = await runToExit({ PORT: '0' }, [], ['--port', '5000']);
    assert.equal(code, 1, stderr);
    assert.deepEqual(stderr.trim().split('\n'), [
      'contextio-graphql: takes no arguments (got "--port" "5000"): it is set through the environment, PORT, HOST and the other settings of docs/configuration.md',
    ]);
  });

  it('refuses a bad configuration with one line per problem and exit code 1', async () => {
    const { code, stderr } = await runToExit({ PORT: 'x', CONTEXTIO_API_URL: 'https://api.example.com/2.0', CONTEXTIO_CONSUMER_SECRET: 'hidden-value' });
    assert.equal(code, 1);
    const lines = stderr.trim().split('\n');
    assert.equal(lines.length, 2, stderr);
    assert.match(lines[0]!, /PORT must be a whole number/);
    assert.match(lines[1]!, /CONTEXTIO_CONSUMER_KEY is required/);
    assert.doesNotMatch(stderr, /hidden-value/);
  });

  it('names the variable when it cannot listen: a port in use (PORT, EMULATOR_PORT), a HOST not of this machine, an EMULATOR_HOST that does not resolve', async () => {
    const taken = createServer();
    const port = await listenOnLoopback(taken);
    try {
      const cases: Array<[Record<string, string>, RegExp]> = [
        [{ PORT: String(port) }, new RegExp(`^contextio-graphql: failed to start: PORT=${port}: the port is already in use on 127\\.0\\.0\\.1`)],
        [{ PORT: '0', EMULATOR_PORT: String(port) }, new RegExp(`^contextio-graphql: failed to start: EMULATOR_PORT=${port}: the port is already in use`)],
        // 192.0.2.1 is TEST-NET-1 (RFC 5737): never an address of this machine. Off loopback, auth is required.
        [{ PORT: '0', HOST: '192.0.2.1', AUTH_JWT_SECRET: 'x'.repeat(32) }, /^contextio-graphql: failed to start: HOST=192\.0\.2\.1: not an address of this machine/],
        // .invalid never resolves (RFC 6761): the embedded emulator's host, named by its own variable.
        [{ PORT: '0', EMULATOR_HOST: 'emulator.invalid' }, /^contextio-graphql: failed to start: EMULATOR_HOST=emulator\.invalid: the name does not resolve to an address$/],
      ];
      for (const [env, line] of cases) {
        const { code, stdout, stderr } = await runToExit(env);
        assert.equal(code, 1, stderr);
        // The log (JSON lines, also on stderr) may come first; the reason is one line of its own.
        const reasons = stderr.split('\n').filter((l) => l.includes('failed to start'));
        assert.equal(reasons.length, 1, stderr);
        assert.match(reasons[0]!, line);
        assert.doesNotMatch(stdout, /gateway ready/);
      }
    } finally {
      await closeServer(taken);
    }
  });

  it('says a failed start on one line when the value it names holds a line break (EMULATOR_DATA_FILE from a .env)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'contextio-start-'));
    try {
      // A folder whose name holds a line break: the line naming it went on below, where its rest passed for a line of its own.
      const folder = join(dir, 'state\nrest');
      await mkdir(folder);
      const { code, stderr } = await runToExit({ PORT: '0', EMULATOR_DATA_FILE: folder });
      assert.equal(code, 1, stderr);
      const reasons = stderr.split('\n').filter((l) => l.includes('failed to start'));
      assert.equal(reasons.length, 1, stderr);
      assert.ok(reasons[0]!.endsWith("state\\nrest is not a file (a folder, a pipe or a device): set EMULATOR_DATA_FILE to a file's path"), stderr);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('says so when PORT is taken by its own embedded emulator (EMULATOR_PORT set to the same), not as a port some other process holds', async () => {
    // A port free now: once the process has exited, nothing holds it, which is what misled.
    const port = await closedPort();
    const { code, stderr } = await runToExit({ PORT: String(port), EMULATOR_PORT: String(port) });
    assert.equal(code, 1, stderr);
    const reasons = stderr.split('\n').filter((l) => l.includes('failed to start'));
    assert.equal(reasons.length, 1, stderr);
    assert.match(reasons[0]!, new RegExp(`^contextio-graphql: failed to start: PORT=${port}: the embedded emulator listens on this port \\(EMULATOR_PORT=${port}\\)`));
  });

  it('names the port in use even when the embedded emulator then cannot save its state on the way out', async () => {
    const taken = createServer();
    const port = await listenOnLoopback(taken);
    const dir = await mkdtemp(join(tmpdir(), 'contextio-start-'));
    try {
      const preload = [new URL('./fixtures/fail-saves-after-first.mjs', import.meta.url).href];
      const { code, stderr } = await runToExit({ PORT: String(port), EMULATOR_DATA_FILE: join(dir, 'state.json') }, preload);
      assert.equal(code, 1, stderr);
      assert.match(stderr, /could not save its state to EMULATOR_DATA_FILE.*ENOSPC/, 'the failed save is logged');
      // Its line first, then the reason: the lines logged on the way out are written before it, not at exit.
      assert.ok(stderr.indexOf('could not save its state') < stderr.indexOf('failed to start'), stderr);
      const reasons = stderr.split('\n').filter((l) => l.includes('failed to start'));
      assert.equal(reasons.length, 1, stderr);
      assert.match(reasons[0]!, new RegExp(`^contextio-graphql: failed to start: PORT=${port}: the port is already in use`));
    } finally {
      await closeServer(taken);
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/** Runs `src/main.ts` with only `env` (and PATH) until it exits on its own, stdout and stderr apart. */
async function runToExit(env: Record<string, string>, preload: string[] = [], args: string[] = []): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', ...preload.flatMap((file) => ['--import', file]), 'src/main.ts', ...args], {
    env: { PATH: process.env['PATH'] ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/**
 * `npm start` with the embedded emulator on a data file of its own, its saves slowed by `fixture` (one of
 * test/emulator/fixtures/), a change made whose save is under way (its answer waits on it, so it is only
 * handed over, as `created`), and its shutdown begun (SIGTERM); then `use`. The process is killed after.
 */
async function withSaveUnderWay(fixture: string, use: (started: Started, dataFile: string, created: Promise<unknown>) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'contextio-start-'));
  const dataFile = join(dir, 'state.json');
  const preload = [new URL(`../emulator/fixtures/${fixture}`, import.meta.url).href];
  const started = await startMain({ EMULATOR_SEED: 'none', EMULATOR_DATA_FILE: dataFile, SHUTDOWN_DRAIN_MS: '0' }, preload);
  try {
    const created = query(started.url, 'mutation { createConnectToken(input: { callbackUrl: "https://app.example.com/cb" }) { token } }').catch(() => undefined);
    await eventually(async () => (await readdir(dir)).some((name) => name !== 'state.json'), { ...IN_MAIN, what: 'the save to begin' });
    started.stop('SIGTERM').catch(() => undefined);
    await eventually(() => started.lines.some((l) => l.includes('shutting down')), IN_MAIN);
    await use(started, dataFile, created);
  } finally {
    try {
      process.kill(started.pid, 'SIGKILL'); // after a failed assertion
    } catch {
      // It exited.
    }
    await rm(dir, { recursive: true, force: true });
  }
}
