import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig, type Env } from '../../src/config/index.ts';
import { argumentsProblem, ignoredEmulatorSettings, namesApiVersion, SETTINGS, unknownSettings } from '../../src/config/settings.ts';

/** The variables `loadConfig` reads from `env`, whether it accepts them or not. */
function namesRead(env: Env): Set<string> {
  const read = new Set<string>();
  const tracked = new Proxy(env, {
    get(target, name) {
      if (typeof name === 'string') read.add(name);
      return Reflect.get(target, name);
    },
  });
  try {
    loadConfig(tracked);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
  }
  return read;
}

describe('the settings', () => {
  it('names a variable under the gateway’s prefixes that is no setting, with the setting it is closest to', () => {
    const env = {
      AUTH_JWT_SECRETS: 'a-secret',
      MAX_QUERY_DEPT: '5',
      EMULATOR_FOO: '1',
      UPSTREAM_TIMEOUT: '1500',
      AUTH_JWT_SECRET: 'a-secret',
      PORT: '4000',
      PATH: '/usr/bin',
      MAXIMUM: '1',
      LOG_LEVL: 'debug',
      LOGNAME: 'root',
      // Other programs' variables that hold a prefix further in: only a name that starts with one is the gateway's.
      GITHUB_AUTH_TOKEN: 'a-token',
      PG_MAX_CONNECTIONS: '10',
      NPM_CONFIG_LOG_LEVEL: 'warn',
      INTROSPECTIONS: 'true',
      INTROSPECTION: 'true',
      // Two edits from LOG_LEVEL: the least distance still named, however short the setting.
      LOG_LEVELXX: 'debug',
      // One edit from EMULATOR_PORT and from EMULATOR_HOST: naming the first alone would be a guess.
      EMULATOR_HORT: '4010',
    };
    assert.deepEqual(unknownSettings(env), [
      'AUTH_JWT_SECRETS is not a setting and is ignored (did you mean AUTH_JWT_SECRET?)',
      'EMULATOR_FOO is not a setting and is ignored',
      'EMULATOR_HORT is not a setting and is ignored (did you mean EMULATOR_PORT or EMULATOR_HOST?)',
      'INTROSPECTIONS is not a setting and is ignored (did you mean INTROSPECTION?)',
      'LOG_LEVELXX is not a setting and is ignored (did you mean LOG_LEVEL?)',
      'LOG_LEVL is not a setting and is ignored (did you mean LOG_LEVEL?)',
      'MAX_QUERY_DEPT is not a setting and is ignored (did you mean MAX_QUERY_DEPTH?)',
      'UPSTREAM_TIMEOUT is not a setting and is ignored (did you mean UPSTREAM_TIMEOUT_MS?)',
    ]);
    assert.deepEqual(unknownSettings(env, ['EMULATOR_']), ['EMULATOR_FOO is not a setting and is ignored', 'EMULATOR_HORT is not a setting and is ignored (did you mean EMULATOR_PORT or EMULATOR_HOST?)']);
    assert.ok(unknownSettings(env).every((line) => !line.includes('a-secret')), 'no line holds the secret');
  });

  it('names a setting written in another case, which the environment (case-sensitive) leaves unset', () => {
    // A lower-case secret (a compose file's keys written so) would otherwise start the gateway in open mode unsaid.
    const env = { auth_jwt_secret: 'a-secret', Emulator_Port: '4010', http_proxy: 'http://proxy.example:3128', npm_config_cache: '/tmp' };
    assert.deepEqual(unknownSettings(env), [
      'Emulator_Port is not a setting and is ignored (did you mean EMULATOR_PORT?)',
      'auth_jwt_secret is not a setting and is ignored (did you mean AUTH_JWT_SECRET?)',
    ]);
    assert.deepEqual(unknownSettings(env, ['EMULATOR_']), ['Emulator_Port is not a setting and is ignored (did you mean EMULATOR_PORT?)']);
  });

  it('names the emulator settings set where CONTEXTIO_API_URL keeps the emulator from running, in the table\'s order, never their values', () => {
    assert.equal(ignoredEmulatorSettings({ PORT: '4000', EMULATOR_FOO: 'x', EMULATOR_SEED: ' ' }), undefined, 'blank counts as unset, and a typo is said apart');
    assert.equal(ignoredEmulatorSettings({ EMULATOR_PORT: '4010' }), 'EMULATOR_PORT is ignored: CONTEXTIO_API_URL is set, so the embedded emulator does not run');
    assert.equal(
      ignoredEmulatorSettings({ EMULATOR_DATA_FILE: '/var/lib/emu.json', EMULATOR_CONSUMER_SECRET: 'a-secret', EMULATOR_PORT: '4010' }),
      'EMULATOR_PORT, EMULATOR_CONSUMER_SECRET, EMULATOR_DATA_FILE are ignored: CONTEXTIO_API_URL is set, so the embedded emulator does not run',
    );
  });

  it('quotes the arguments it refuses without the value of a NAME=value one or any holding an @: a setting passed as an argument may be a secret', () => {
    // `npm start -- AUTH_JWT_SECRET=…` (a setting written where the environment was meant) printed the secret whole.
    const problem = argumentsProblem(['AUTH_JWT_SECRET=hunter2-hunter2-hunter2-hunter2-hunter2', '--port', '5000', '--proxy=http://u:pw@p.example', 'https://deploy:hunter2@x.example'], 'PORT');
    assert.equal(problem, 'takes no arguments (got "AUTH_JWT_SECRET=…" "--port" "5000" "--proxy=…" a value with an @, not shown): it is set through the environment, PORT');
  });

  it('takes an upstream URL as naming the API version when its path ends in one: 2.0, 2 or v2, in any case', () => {
    for (const url of ['https://api.context.io/2.0', 'https://api.context.io/2', 'https://api.context.io/v2', 'https://api.context.io/V2.0', 'http://127.0.0.1:8080/proxy/2.0.1']) {
      assert.equal(namesApiVersion(url), true, url);
    }
    // No version, or not last (a resource's URL pasted in). The configuration has cut a trailing slash already.
    for (const url of ['https://api.context.io', 'https://api.context.io/2.0/accounts', 'https://api.context.io/version2', 'https://api.context.io/2.', 'https://api.context.io/vv2', 'https://api.context.io/v']) {
      assert.equal(namesApiVersion(url), false, url);
    }
  });

  it('names the one setting a shortened name leaves words out of, however many letters that is', () => {
    const env = { MAX_DEPTH: '5', BREAKER_THRESHOLD: '3', CALLER_WRITES: '10', CONTEXTIO_URL: 'https://api.example.com/2.0', MAX_QUERY: '1', AUTH_: 'x' };
    assert.deepEqual(unknownSettings(env), [
      'AUTH_ is not a setting and is ignored',
      'BREAKER_THRESHOLD is not a setting and is ignored (did you mean BREAKER_FAILURE_THRESHOLD?)',
      'CALLER_WRITES is not a setting and is ignored (did you mean CALLER_WRITES_PER_HOUR?)',
      'CONTEXTIO_URL is not a setting and is ignored (did you mean CONTEXTIO_API_URL?)',
      'MAX_DEPTH is not a setting and is ignored (did you mean MAX_QUERY_DEPTH?)',
      // MAX_QUERY_DEPTH, MAX_QUERY_COST and MAX_QUERY_TOKENS all fit: naming one would be a guess.
      'MAX_QUERY is not a setting and is ignored',
    ]);
  });

  it('are exactly what the configuration reads, in either mode, and what the README’s tables list', () => {
    const remote = { CONTEXTIO_CONSUMER_KEY: 'k', CONTEXTIO_CONSUMER_SECRET: 's' };
    const read = new Set([
      ...namesRead({}),
      ...namesRead({ CONTEXTIO_API_URL: 'https://api.example.com/2.0', ...remote }),
      // An http:// upstream's proxy variables, and NO_PROXY, which is read once a proxy is set.
      ...namesRead({ CONTEXTIO_API_URL: 'http://api.example.com/2.0', http_proxy: 'http://proxy.example:3128', ...remote }),
    ]);
    assert.deepEqual(
      [...read].sort(),
      [...SETTINGS].sort(),
      'the variables src/config/ reads (left) against SETTINGS in src/config/settings.ts (right): a setting read must be listed there, and in the README’s table',
    );
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const documented = new Set(
      readme
        .split('\n')
        .filter((line) => line.startsWith('| `'))
        // Lower case too: the proxy variables are read in both spellings (`HTTPS_PROXY` / `https_proxy`).
        .flatMap((line) => [...line.split(' | ')[0]!.matchAll(/`([A-Za-z][A-Za-z0-9_]+)`/g)].map((match) => match[1]!)),
    );
    for (const name of SETTINGS) if (name !== 'NODE_ENV') assert.ok(documented.has(name), `${name} (SETTINGS in src/config/settings.ts) in the README's tables`);
  });
});
