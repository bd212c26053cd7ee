import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config/index.ts';
import { emulatorOptionsFromEnv, publicSecretWarning } from '../../src/emulator/config.ts';
import { configProblems } from '../helpers/config.ts';

describe('configuration from the environment', () => {
  it('defaults to the embedded emulator on 127.0.0.1:4000', () => {
    const config = loadConfig({});
    assert.equal(config.port, 4000);
    assert.equal(config.host, '127.0.0.1');
    assert.equal(config.upstream.kind, 'embedded');
    assert.equal(config.upstreamTimeoutMs, 10_000);
    assert.equal(config.shutdownDrainMs, 0);
    assert.equal(config.keepAliveTimeoutMs, 72_000);
    assert.equal(config.logLevel, 'info');
  });

  it('makes the embedded emulator a secret up when it listens beyond loopback, unless one is set', () => {
    const local = loadConfig({});
    assert.ok(local.upstream.kind === 'embedded' && !local.upstream.randomSecret, 'on loopback, the embedded emulator keeps the development secret');
    assert.equal(local.upstream.emulator.consumerSecret, 'dev-secret');
    const wide = loadConfig({ EMULATOR_HOST: '0.0.0.0' });
    assert.ok(wide.upstream.kind === 'embedded' && wide.upstream.randomSecret, 'beyond loopback, the embedded emulator gets a random secret');
    assert.match(wide.upstream.emulator.consumerSecret!, /^[\w-]{32}$/);
    assert.notEqual((loadConfig({ EMULATOR_HOST: '::' }).upstream as typeof wide.upstream).emulator.consumerSecret, 'dev-secret');
    // Behind a proxy (the README's EMULATOR_PUBLIC_URL setup), or answering other names, likewise.
    for (const env of [{ EMULATOR_PUBLIC_URL: 'http://devbox.lan:4010' }, { EMULATOR_ALLOWED_HOSTS: 'devbox.lan' }, { EMULATOR_ALLOWED_HOSTS: '*' }]) {
      const proxied = loadConfig(env);
      assert.ok(proxied.upstream.kind === 'embedded' && proxied.upstream.randomSecret, JSON.stringify(env));
    }
    // Listening on IPv6 loopback, written bare as a listen address is (no brackets, and `:1` is no port).
    for (const host of ['::1', '::ffff:127.0.0.1']) {
      const ipv6Loopback = loadConfig({ EMULATOR_HOST: host });
      assert.ok(ipv6Loopback.upstream.kind === 'embedded' && !ipv6Loopback.upstream.randomSecret, host);
      assert.equal(ipv6Loopback.upstream.emulator.consumerSecret, 'dev-secret');
      assert.equal(publicSecretWarning({ host, consumerSecret: 'dev-secret' }), undefined, host);
    }
    const loopbackNames = loadConfig({ EMULATOR_PUBLIC_URL: 'http://localhost:4010', EMULATOR_ALLOWED_HOSTS: '127.0.0.1:4010,[::1]' });
    assert.ok(loopbackNames.upstream.kind === 'embedded' && !loopbackNames.upstream.randomSecret, 'a public URL and allowed hosts on loopback keep the development secret');
    const set = loadConfig({ EMULATOR_HOST: '0.0.0.0', EMULATOR_CONSUMER_SECRET: 'chosen' });
    assert.ok(set.upstream.kind === 'embedded' && !set.upstream.randomSecret, 'a secret set is kept');
    assert.equal(set.upstream.emulator.consumerSecret, 'chosen');
    // `npm run emulator` keeps the development secret there, and warns.
    assert.match(publicSecretWarning({ host: '0.0.0.0', consumerSecret: 'dev-secret' }) ?? '', /reachable beyond loopback .* with the public development secret/);
    assert.ok(publicSecretWarning({ host: '127.0.0.1', publicUrl: 'http://devbox.lan:4010' }), 'a public URL beyond loopback with the development secret is warned of');
    assert.equal(publicSecretWarning({ host: '127.0.0.1', consumerSecret: 'dev-secret' }), undefined);
    assert.equal(publicSecretWarning({ host: '0.0.0.0', consumerSecret: 'chosen' }), undefined);
  });

  it('reads NODE_ENV trimmed, as every other setting: blank is unset', () => {
    for (const value of ['development', ' development ', 'development\n']) assert.equal(loadConfig({ NODE_ENV: value }).development, true, JSON.stringify(value));
    for (const value of ['production', ' ', 'developments']) assert.equal(loadConfig({ NODE_ENV: value }).development, false, JSON.stringify(value));
    assert.equal(loadConfig({ NODE_ENV: ' development\n' }).introspection, true);
  });

  it('reads a setting of spaces only as unset: its default, no problem', () => {
    // A `.env` line `PORT= ` (or a template left blank) must not stop start-up as if a value were wrong.
    const config = loadConfig({ PORT: '  ', LOG_LEVEL: ' ', MAX_QUERY_COST: '\t', CONTEXTIO_API_URL: ' ', CONTEXTIO_CONSUMER_KEY: ' ' });
    assert.equal(config.port, 4000);
    assert.equal(config.logLevel, 'info');
    assert.equal(config.operationLimits.maxCost, loadConfig({}).operationLimits.maxCost);
    assert.equal(config.upstream.kind, 'embedded');
  });

  it('refuses credentials in CONTEXTIO_API_URL, never sent, without showing them', () => {
    const problems = configProblems({ CONTEXTIO_API_URL: 'https://user:hunter2@api.example.com/2.0', CONTEXTIO_CONSUMER_KEY: 'k', CONTEXTIO_CONSUMER_SECRET: 's' });
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /^CONTEXTIO_API_URL must not carry a user name or password/);
    assert.doesNotMatch(problems[0]!, /hunter2/);
    // A password without a user name is one all the same.
    const passwordOnly = configProblems({ CONTEXTIO_API_URL: 'https://:hunter2@api.example.com/2.0', CONTEXTIO_CONSUMER_KEY: 'k', CONTEXTIO_CONSUMER_SECRET: 's' });
    assert.equal(passwordOnly.length, 1);
    assert.match(passwordOnly[0]!, /^CONTEXTIO_API_URL must not carry a user name or password/);
    assert.doesNotMatch(passwordOnly[0]!, /hunter2/);
    // And a user name without a password (an API key, for some services, goes there).
    const userOnly = configProblems({ CONTEXTIO_API_URL: 'https://hunter2@api.example.com/2.0', CONTEXTIO_CONSUMER_KEY: 'k', CONTEXTIO_CONSUMER_SECRET: 's' });
    assert.equal(userOnly.length, 1);
    assert.match(userOnly[0]!, /^CONTEXTIO_API_URL must not carry a user name or password/);
    assert.doesNotMatch(userOnly[0]!, /hunter2/);
    // Every problem in one round: the proxy's too, said beside the URL's.
    const withProxy = configProblems({ CONTEXTIO_API_URL: 'https://user:hunter2@api.example.com/2.0', HTTPS_PROXY: 'ftp://proxy.example', CONTEXTIO_CONSUMER_KEY: 'k', CONTEXTIO_CONSUMER_SECRET: 's' });
    assert.deepEqual(withProxy.map((problem) => problem.split(' ')[0]), ['CONTEXTIO_API_URL', 'HTTPS_PROXY']);
    assert.doesNotMatch(withProxy.join('\n'), /hunter2/);
  });

  it('takes the key set through the egress proxy, an unusable proxy said once for the upstream and the key set alike', () => {
    const auth = (env: Record<string, string>) => loadConfig({ AUTH_JWKS_URL: 'https://idp.example.com/jwks.json', ...env }).auth;
    assert.equal(auth({ HTTPS_PROXY: 'http://proxy.example:3128' }).jwksProxy?.shown, 'proxy.example:3128');
    assert.equal(auth({ HTTPS_PROXY: 'http://proxy.example:3128', NO_PROXY: '.example.com' }).jwksProxy, undefined);
    assert.equal(auth({ HTTP_PROXY: 'http://proxy.example:3128' }).jwksProxy, undefined);
    const problems = configProblems({
      CONTEXTIO_API_URL: 'https://api.example.com/2.0', CONTEXTIO_CONSUMER_KEY: 'k', CONTEXTIO_CONSUMER_SECRET: 's',
      AUTH_JWKS_URL: 'https://idp.example.com/jwks.json', HTTPS_PROXY: 'ftp://user:pw@proxy.example',
    });
    assert.deepEqual(problems.map((problem) => problem.split(' ')[0]), ['HTTPS_PROXY']);
    assert.doesNotMatch(problems[0]!, /pw/);
  });

  it('refuses a number written otherwise than in digits, and an upstream URL with a query or a fragment', () => {
    for (const value of ['1e3', '0x10', '+80', '80.0']) {
      assert.match(configProblems({ PORT: value })[0] ?? '', /^PORT must be a whole number/, value);
    }
    // A bare `?` or `#` too: the paths appended to it would land in its query or fragment.
    for (const url of ['https://api.example.com/2.0?key=1', 'https://api.example.com/2.0#top', 'https://api.example.com/2.0?', 'https://api.example.com/2.0#', 'https://api.example.com/2.0/?#']) {
      assert.match(configProblems({ CONTEXTIO_API_URL: url, CONTEXTIO_CONSUMER_KEY: 'k', CONTEXTIO_CONSUMER_SECRET: 's' })[0] ?? '', /^CONTEXTIO_API_URL must be an http\(s\) URL/, url);
    }
  });

  // The egress proxy is looked for only for a URL that parses: one that does not (written without its scheme)
  // is said as a problem of its own, not a TypeError thrown from reading its host for the proxy's sake.
  it('refuses an upstream URL that does not parse, an egress proxy set or not', () => {
    for (const proxy of [{}, { HTTPS_PROXY: 'http://proxy.example:3128' }]) {
      const problems = configProblems({ CONTEXTIO_API_URL: 'api.context.io/2.0', CONTEXTIO_CONSUMER_KEY: 'k', CONTEXTIO_CONSUMER_SECRET: 's', ...proxy });
      assert.equal(problems.length, 1, JSON.stringify(proxy));
      assert.match(problems[0]!, /^CONTEXTIO_API_URL must be an http\(s\) URL/);
    }
  });

  it('uses a configured upstream with its key pair', () => {
    const config = loadConfig({ CONTEXTIO_API_URL: 'https://api.example.com/2.0/', CONTEXTIO_CONSUMER_KEY: 'k', CONTEXTIO_CONSUMER_SECRET: 's' });
    assert.deepEqual(config.upstream, { kind: 'remote', baseUrl: 'https://api.example.com/2.0', consumerKey: 'k', consumerSecret: 's' });
  });

  it('reports every problem, one line each, naming the variable and never a secret', () => {
    const problems = configProblems({
      PORT: 'eighty',
      UPSTREAM_TIMEOUT_MS: '-5',
      LOG_LEVEL: 'loud',
      CONTEXTIO_API_URL: 'ftp://x',
      CONTEXTIO_CONSUMER_SECRET: 'super-secret-value',
    });
    assert.equal(problems.length, 5);
    for (const name of ['PORT', 'UPSTREAM_TIMEOUT_MS', 'LOG_LEVEL', 'CONTEXTIO_API_URL', 'CONTEXTIO_CONSUMER_KEY']) {
      assert.ok(problems.some((p) => p.startsWith(name)), `${name} in ${problems.join(' | ')}`);
    }
    assert.ok(problems.every((p) => !p.includes('super-secret-value') && !p.includes('\n')), 'no problem holds the secret or a line break');
  });

  it('reads IDE as true or false, on by default; another value is refused, naming the variable', () => {
    assert.equal(loadConfig({}).ide, true);
    assert.equal(loadConfig({ IDE: 'false' }).ide, false);
    assert.equal(loadConfig({ IDE: ' true ' }).ide, true);
    assert.deepEqual(configProblems({ IDE: 'off' }), ['IDE must be true or false (got "off")']);
    assert.deepEqual(configProblems({ INTROSPECTION: 'no' }), ['INTROSPECTION must be true or false (got "no")']);
  });

  it('reads the tuning settings from the environment, each checked against its range', () => {
    const config = loadConfig({
      UPSTREAM_MAX_IN_FLIGHT: '32',
      OPERATION_TIMEOUT_MS: '1500',
      SHUTDOWN_GRACE_MS: '0',
      SHUTDOWN_DRAIN_MS: '5000',
      KEEP_ALIVE_TIMEOUT_MS: '65000',
      BREAKER_FAILURE_THRESHOLD: '7',
      BREAKER_COOLDOWN_MS: '250',
      CALLER_WRITES_PER_HOUR: '0',
      CALLER_READS_PER_HOUR: '250',
      MAX_BODY_BYTES: '2048',
      MAX_ANSWER_BYTES: '1048576',
      MAX_OPERATIONS_IN_FLIGHT: '50',
      MAX_BODY_BYTES_IN_FLIGHT: '4096',
      MAX_ANSWER_BYTES_IN_FLIGHT: '2097152',
      MAX_QUERY_DEPTH: '5',
      MAX_QUERY_COST: '500',
    });
    assert.equal(config.upstreamMaxInFlight, 32);
    assert.equal(config.operationTimeoutMs, 1_500);
    assert.equal(config.shutdownGraceMs, 0);
    assert.equal(config.shutdownDrainMs, 5_000);
    assert.equal(config.keepAliveTimeoutMs, 65_000);
    assert.equal(config.breakerFailureThreshold, 7);
    assert.equal(config.breakerCooldownMs, 250);
    assert.equal(config.callerWritesPerHour, 0);
    assert.equal(loadConfig({}).callerWritesPerHour, 60);
    assert.equal(config.callerReadsPerHour, 250);
    assert.equal(loadConfig({}).callerReadsPerHour, 1_000);
    assert.equal(config.maxBodyBytes, 2_048);
    assert.equal(config.maxAnswerBytes, 1_048_576);
    assert.equal(config.maxOperationsInFlight, 50);
    assert.equal(loadConfig({}).maxOperationsInFlight, 1_000);
    assert.equal(config.maxBodyBytesInFlight, 4_096);
    assert.equal(loadConfig({}).maxBodyBytesInFlight, 128 * 1024 * 1024);
    // Below one body of the largest size, such a body could never be read.
    assert.deepEqual(configProblems({ MAX_BODY_BYTES: '2048', MAX_BODY_BYTES_IN_FLIGHT: '2047' }), ['MAX_BODY_BYTES_IN_FLIGHT must be a whole number from 2048 (MAX_BODY_BYTES) to 68719476736 (got "2047")']);
    assert.equal(config.maxAnswerBytesInFlight, 2_097_152);
    assert.equal(loadConfig({}).maxAnswerBytesInFlight, 256 * 1024 * 1024);
    // Below one answer of the largest size, that answer held would refuse every operation: the default follows it.
    assert.deepEqual(configProblems({ MAX_ANSWER_BYTES: '1048576', MAX_ANSWER_BYTES_IN_FLIGHT: '1048575' }), ['MAX_ANSWER_BYTES_IN_FLIGHT must be a whole number from 1048576 (MAX_ANSWER_BYTES) to 68719476736 (got "1048575")']);
    assert.equal(loadConfig({ MAX_ANSWER_BYTES: String(512 * 1024 * 1024) }).maxAnswerBytesInFlight, 512 * 1024 * 1024);
    assert.equal(config.operationLimits?.maxDepth, 5);
    assert.equal(config.operationLimits?.maxCost, 500);
    const problems = configProblems({ UPSTREAM_MAX_IN_FLIGHT: '0', OPERATION_TIMEOUT_MS: 'soon', SHUTDOWN_DRAIN_MS: '-1', KEEP_ALIVE_TIMEOUT_MS: '0', BREAKER_FAILURE_THRESHOLD: '1.5', CALLER_WRITES_PER_HOUR: '-1', CALLER_READS_PER_HOUR: 'many', MAX_BODY_BYTES: '10', MAX_ANSWER_BYTES: '1024', MAX_OPERATIONS_IN_FLIGHT: '0' });
    assert.deepEqual(
      problems.map((p) => p.split(' ')[0]),
      ['UPSTREAM_MAX_IN_FLIGHT', 'OPERATION_TIMEOUT_MS', 'SHUTDOWN_DRAIN_MS', 'KEEP_ALIVE_TIMEOUT_MS', 'BREAKER_FAILURE_THRESHOLD', 'CALLER_WRITES_PER_HOUR', 'CALLER_READS_PER_HOUR', 'MAX_BODY_BYTES', 'MAX_ANSWER_BYTES', 'MAX_OPERATIONS_IN_FLIGHT'],
    );
  });

  it('quotes at most 100 characters of a value it refuses, whichever the setting: a line stays a line', () => {
    assert.deepEqual(configProblems({ PORT: '9'.repeat(3000) }), [`PORT must be a whole number from 0 to 65535 (got "${'9'.repeat(100)}…")`]);
    const long = 'x'.repeat(3000);
    const quoted = `(got "${'x'.repeat(100)}…")`;
    const gateway = configProblems({ LOG_LEVEL: long, INTROSPECTION: long, CORS_ORIGINS: long });
    const emulator: string[] = [];
    emulatorOptionsFromEnv({ EMULATOR_PORT: long, EMULATOR_RATE_LIMIT: long, EMULATOR_SEED: long, EMULATOR_PUBLIC_URL: long, EMULATOR_ALLOWED_HOSTS: `${long}!` }, 4010, emulator);
    assert.equal(gateway.length + emulator.length, 8);
    for (const problem of [...gateway, ...emulator]) {
      assert.ok(problem.endsWith(quoted), problem.slice(0, 200));
    }
  });

  it('quotes a refused value with its line breaks escaped, whichever the setting: a problem stays one line', () => {
    // A value from a `.env` or a secret store may hold a line break; printed as it is, the rest of the value
    // would stand on a line of its own, unprefixed, and could pass for another problem or setting.
    const problems = configProblems({ PORT: '80\n81', LOG_LEVEL: 'verbose\nLOG_LEVEL=debug', INTROSPECTION: 'yes\r\nno', CORS_ORIGINS: 'https://a.example\u2028x' });
    const emulator: string[] = [];
    emulatorOptionsFromEnv({ EMULATOR_SEED: 'demo\nnone', EMULATOR_RATE_LIMIT: '5\n5' }, 4010, emulator);
    assert.equal(problems.length + emulator.length, 6);
    for (const problem of [...problems, ...emulator]) assert.doesNotMatch(problem, /[\n\r\u2028\u2029]/, JSON.stringify(problem));
    assert.ok(problems.includes('LOG_LEVEL must be one of debug, info, warn, error (got "verbose\\nLOG_LEVEL=debug")'), problems.join(' | '));
  });

  it('never quotes a refused value holding an @, whichever the setting: a URL pasted in may carry a password', () => {
    // No value of these settings has an @; a URL with credentials pasted into one (HOST=https://user:password@…) has.
    const url = 'https://deploy:hunter2@gateway.example.com';
    const problems = configProblems({ HOST: url, PORT: url, LOG_LEVEL: url, INTROSPECTION: url, UPSTREAM_TIMEOUT_MS: 'user:hunter2@x' });
    const emulator: string[] = [];
    emulatorOptionsFromEnv({ EMULATOR_HOST: url, EMULATOR_PORT: url, EMULATOR_SEED: url, EMULATOR_RATE_LIMIT: url }, 4010, emulator);
    assert.equal(problems.length + emulator.length, 9, [...problems, ...emulator].join('\n'));
    for (const problem of [...problems, ...emulator]) {
      assert.doesNotMatch(problem, /hunter2|deploy/, problem);
      assert.match(problem, /\(got a value with an @, not shown\)$/, problem);
    }
  });

  it('names a HOST open mode refuses on one line, with at most 100 characters of it', () => {
    assert.deepEqual(configProblems({ HOST: 'gateway.internal' }), ['HOST=gateway.internal is not a loopback address, so AUTH_JWT_SECRET or AUTH_JWKS_URL is required: without either every caller would be admin']);
    assert.deepEqual(configProblems({ HOST: 'h'.repeat(3000) }), [`HOST=${'h'.repeat(100)}… is not a loopback address, so AUTH_JWT_SECRET or AUTH_JWKS_URL is required: without either every caller would be admin`]);
  });

  it('refuses a HOST that is no address or host name to listen on (a port, a scheme or brackets written in), in either mode, saying so rather than asking for authentication', () => {
    const why = 'must be an IP address or a host name to listen on, without a scheme, port, path or brackets (PORT sets the port)';
    for (const [host, shown] of [['127.0.0.1:4000', '"127.0.0.1:4000"'], ['http://127.0.0.1', '"http://127.0.0.1"'], ['[::1]', '"[::1]"'], ['bad\nhost', '"bad\\nhost"'], ['local host', '"local host"']]) {
      assert.deepEqual(configProblems({ HOST: host! }), [`HOST ${why} (got ${shown})`], host);
      assert.deepEqual(configProblems({ HOST: host!, AUTH_JWT_SECRET: 'a-secret-of-at-least-32-characters-long' }), [`HOST ${why} (got ${shown})`], host);
    }
    for (const host of ['localhost', '127.0.0.1', '::1', '0:0:0:0:0:0:0:1']) assert.deepEqual(configProblems({ HOST: host }), [], host);
    for (const host of ['0.0.0.0', '::', 'gateway.internal', 'my_host-1.lan']) assert.deepEqual(configProblems({ HOST: host, AUTH_JWT_SECRET: 'a-secret-of-at-least-32-characters-long' }), [], host);
    // The embedded emulator's the same way.
    const emulator: string[] = [];
    emulatorOptionsFromEnv({ EMULATOR_HOST: 'localhost:4010' }, 4010, emulator);
    assert.deepEqual(emulator, ['EMULATOR_HOST must be an IP address or a host name to listen on, without a scheme, port, path or brackets (EMULATOR_PORT sets the port) (got "localhost:4010")']);
  });

  it('keeps UPSTREAM_TIMEOUT_MS within 2 minutes: a request queued longer would go out with a stale OAuth timestamp', () => {
    assert.equal(loadConfig({ UPSTREAM_TIMEOUT_MS: '120000' }).upstreamTimeoutMs, 120_000);
    assert.deepEqual(configProblems({ UPSTREAM_TIMEOUT_MS: '120001' }), ['UPSTREAM_TIMEOUT_MS must be a whole number from 1 to 120000 (got "120001")']);
  });

  it('reports a bad CORS_ORIGINS entry once, however often the list repeats it', () => {
    // A list pasted twice, or one entry copied down, gave the same line once per copy.
    assert.deepEqual(configProblems({ CORS_ORIGINS: 'https://*.example.com, https://app.example.com,https://*.example.com,ftp://x.example,ftp://x.example' }), [
      'CORS_ORIGINS must list exact origins such as https://app.example.com (got "https://*.example.com": wildcards are not supported, list each origin)',
      'CORS_ORIGINS must list exact origins such as https://app.example.com (got "ftp://x.example")',
    ]);
    // Not shown (the list holds an @), an entry is still told once.
    assert.deepEqual(configProblems({ CORS_ORIGINS: 'https://u:p@a.example,https://u:p@a.example' }), [
      'CORS_ORIGINS must list exact origins such as https://app.example.com (got an entry, not shown: the list holds an @, as credentials in a URL would)',
    ]);
    // A password holding a comma splits its URL in two entries, the first without the @: no part of it is shown.
    const split = configProblems({ CORS_ORIGINS: 'https://app.example.com,https://user:hunter,2@a.example' });
    assert.equal(split.length, 2);
    for (const problem of split) {
      assert.match(problem, /got an entry, not shown: the list holds an @/);
      assert.doesNotMatch(problem, /hunter|user/);
    }
  });

  it('refuses a URL setting holding a tab, a line break or another control character, naming where, never the value', () => {
    // The URL parser drops tabs and line breaks without a word and reads the rest: the value was taken, and
    // `gateway ready` then showed it with them, as the upstream or the key set it named.
    const pair = { CONTEXTIO_CONSUMER_KEY: 'k', CONTEXTIO_CONSUMER_SECRET: 's' };
    const said = (name: string, what: string, at: number) =>
      `${name} must be a URL without tabs, line breaks or other control characters (found ${what} at character ${at}; the URL parser would drop some silently and read another URL than the one written)`;
    for (const [value, what, at] of [
      ['https://api.exa\tmple.com/2.0', 'a tab (U+0009)', 16],
      ['https://api.example.com/2.0\n/x', 'a line break (U+000A)', 28],
      ['https://api.example.com/\r2.0', 'a carriage return (U+000D)', 25],
      ['https://api.example.com/2.0\u0000', 'U+0000', 28],
      ['https://user:pw\u001b@api.example.com/2.0', 'U+001B', 16],
      ['https://api.example.com/2.0\u007f', 'U+007F', 28],
    ] as const) {
      assert.deepEqual(configProblems({ CONTEXTIO_API_URL: value, ...pair }), [said('CONTEXTIO_API_URL', what, at)], JSON.stringify(value));
      assert.deepEqual(configProblems({ AUTH_JWKS_URL: value, AUTH_ISSUER: 'i', AUTH_AUDIENCE: 'a' }), [said('AUTH_JWKS_URL', what, at)], JSON.stringify(value));
      const proxied = configProblems({ CONTEXTIO_API_URL: 'https://api.example.com/2.0', ...pair, HTTPS_PROXY: value });
      assert.deepEqual(proxied, [said('HTTPS_PROXY', what, at)], JSON.stringify(value));
    }
    const emulator: string[] = [];
    emulatorOptionsFromEnv({ EMULATOR_PUBLIC_URL: 'http://devbox.\tlan:4010' }, 4010, emulator);
    assert.deepEqual(emulator, [said('EMULATOR_PUBLIC_URL', 'a tab (U+0009)', 15)]);
    // Around the value, they are trimmed as for every setting.
    assert.equal((loadConfig({ CONTEXTIO_API_URL: '\thttps://api.example.com/2.0\r\n', ...pair }).upstream as { baseUrl: string }).baseUrl, 'https://api.example.com/2.0');
  });

  it('reads a number with leading zeros as decimal, as README says, whichever the setting; other forms are refused', () => {
    // Neither octal (a shell's or C's reading of `0100`) nor refused: README's configuration notes say so.
    const config = loadConfig({ PORT: '0080', UPSTREAM_TIMEOUT_MS: '0100', CALLER_WRITES_PER_HOUR: '00', MAX_QUERY_COST: `${'0'.repeat(50)}9` });
    assert.deepEqual([config.port, config.upstreamTimeoutMs, config.callerWritesPerHour, config.operationLimits.maxCost], [80, 100, 0, 9]);
    const emulator: string[] = [];
    const options = emulatorOptionsFromEnv({ EMULATOR_PORT: '04010', EMULATOR_RATE_LIMIT: '010' }, 0, emulator);
    assert.deepEqual([emulator, options.port, options.rateLimitPerHour], [[], 4010, 10]);
    for (const text of ['0x50', '0o120', '8e1', '+80', '80.0', '80_000']) {
      assert.deepEqual(configProblems({ PORT: text }), [`PORT must be a whole number from 0 to 65535 (got ${JSON.stringify(text)})`]);
    }
  });

  it('reads the emulator\'s settings without the spaces around them; spaces alone are no value', () => {
    const problems: string[] = [];
    const options = emulatorOptionsFromEnv({ EMULATOR_HOST: '  ', EMULATOR_CONSUMER_KEY: ' key ', EMULATOR_CONSUMER_SECRET: '\tsecret\n', EMULATOR_SEED: ' none ' }, 4010, problems);
    assert.deepEqual([problems, options.host, options.consumerKey, options.consumerSecret, options.seed], [[], '127.0.0.1', 'key', 'secret', 'none']);
  });

  it('refuses a key pair without an upstream URL', () => {
    assert.match(configProblems({ CONTEXTIO_CONSUMER_KEY: 'k' })[0]!, /CONTEXTIO_API_URL is not/);
  });

  it('names the missing half of the key pair of an upstream URL', () => {
    const url = 'https://api.example.com/2.0';
    assert.deepEqual(configProblems({ CONTEXTIO_API_URL: url, CONTEXTIO_CONSUMER_KEY: 'k' }), ['CONTEXTIO_CONSUMER_SECRET is required when CONTEXTIO_API_URL is set']);
    assert.deepEqual(configProblems({ CONTEXTIO_API_URL: url, CONTEXTIO_CONSUMER_SECRET: 's' }), ['CONTEXTIO_CONSUMER_KEY is required when CONTEXTIO_API_URL is set']);
  });

  it('refuses an EMULATOR_DATA_FILE that names a folder by its spelling (ending in /, . or ..) with the settings: only an edit mends it', () => {
    for (const path of ['/var/lib/emulator/', 'state/.', '/srv/..', '.']) {
      assert.deepEqual(configProblems({ EMULATOR_DATA_FILE: path }), [`EMULATOR_DATA_FILE names a folder (got ${JSON.stringify(path)}): set it to a file's path`], path);
    }
    assert.deepEqual(configProblems({ EMULATOR_DATA_FILE: '/var/lib/emulator/state.json' }), []);
  });
});
