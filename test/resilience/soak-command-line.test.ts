import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

/** `npm run soak -- …`: a command line it cannot use is refused with the usage, before anything starts. */

const soak = fileURLToPath(new URL('../../scripts/soak.ts', import.meta.url));

function runSoak(...args: string[]) {
  return spawnSync(process.execPath, ['--import', 'tsx', soak, ...args], { encoding: 'utf8', env: { PATH: process.env['PATH'] ?? '' } });
}

test('a mistyped option is named with the usage, not thrown as a stack trace', () => {
  const result = runSoak('--durration', '5');
  assert.equal(result.status, 2, result.stderr);
  assert.match(result.stderr, /^soak: Unknown option '--durration'/);
  assert.match(result.stderr, /usage: npm run soak -- \[options\]\n\s+--duration <s>/);
  assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
});

test('an option without its value is said the same way', () => {
  const result = runSoak('--duration');
  assert.equal(result.status, 2, result.stderr);
  assert.match(result.stderr, /^soak: Option '--duration <value>' argument missing/);
  assert.match(result.stderr, /usage: npm run soak/);
});

test('a run too short for its own warm-up says so of --duration, not of a --warmup it was not given', () => {
  const result = runSoak('--duration', '1');
  assert.equal(result.status, 2, result.stderr);
  assert.match(result.stderr, /^soak: --duration must be at least 2/);
  assert.match(result.stderr, /usage: npm run soak/);
});
