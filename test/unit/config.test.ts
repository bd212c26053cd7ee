import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config.ts';

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe('configuration from the environment', () => {
  it('defaults to the embedded emulator on 127.0.0.1:4000', () => {
    const config = loadConfig({});
    assert.equal(config.port, 4000);
    assert.equal(config.host, '127.0.0.1');
    assert.equal(config.upstream.kind, 'embedded');
    assert.equal(config.upstreamTimeoutMs, 10_000);
    assert.equal(config.logLevel, 'info');
  });

  it('uses a configured upstream with its key pair', () => {
    const config = loadConfig({ CONTEXTIO_API_URL: 'https://api.example.com/2.0/', CONTEXTIO_CONSUMER_KEY: 'k', CONTEXTIO_CONSUMER_SECRET: 's' });
    assert.deepEqual(config.upstream, { kind: 'remote', baseUrl: 'https://api.example.com/2.0', consumerKey: 'k', consumerSecret: 's' });
  });

  it('reports every problem, one line each, naming the variable and never a secret', () => {
    const problems = problemsOf({
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
    assert.ok(problems.every((p) => !p.includes('super-secret-value') && !p.includes('\n')));
  });

  it('refuses a key pair without an upstream URL', () => {
    assert.match(problemsOf({ CONTEXTIO_CONSUMER_KEY: 'k' })[0]!, /CONTEXTIO_API_URL is not/);
  });
});
