import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { projectRoot } from '../../src/support/project-root.ts';

interface LockedPackage {
  dev?: boolean;
  devOptional?: boolean;
  engines?: { node?: string };
}

/**
 * Runtime dependencies that ask for a newer Node than `engines` and run on the older one all the same, each
 * named with its reason in the README's Quick start (npm prints an EBADENGINE warning for them).
 */
const NEWER_NODE_TOLERATED = new Set([
  // Calls Node 22's Promise.withResolvers only where it exists.
  'node_modules/@whatwg-node/promise-helpers',
  // Asks for 20.18.1; the whole suite passes on 20.18.0 (2026-12-04), and engines keeps the 20.18 the project
  // promises to support.
  'node_modules/undici',
]);

function readJson(file: string): unknown {
  return JSON.parse(readFileSync(join(projectRoot(), file), 'utf8'));
}

/** The version a `>=20.18.1`-style range starts at, as [major, minor, patch]; undefined for any other range. */
function lowestOf(range: string): number[] | undefined {
  const match = /^>=\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?$/.exec(range.trim());
  return match ? match.slice(1).map((part) => Number(part ?? 0)) : undefined;
}

function isBelow(version: number[], other: number[]): boolean {
  const differing = version.findIndex((part, i) => part !== other[i]);
  return differing !== -1 && version[differing]! < other[differing]!;
}

// npm only warns when a dependency asks for a newer Node than the one installing it (yarn refuses), and
// the dependency's authors neither test nor fix it there: `engines` must not promise a Node that a package
// the gateway runs on does not support, unless the project checked that it runs there and says so.
describe('engines', () => {
  it('promises no Node older than any runtime dependency asks for, but for those the README names', () => {
    const manifest = readJson('package.json') as { engines: { node: string } };
    const ours = lowestOf(manifest.engines.node);
    assert.ok(ours, `package.json engines.node is not a >= range: ${manifest.engines.node}`);
    const lock = readJson('package-lock.json') as { packages: Record<string, LockedPackage> };
    const askingForNewer = Object.entries(lock.packages)
      .filter(([path, entry]) => path !== '' && !entry.dev && !entry.devOptional && !NEWER_NODE_TOLERATED.has(path))
      .filter(([, entry]) => {
        const theirs = entry.engines?.node === undefined ? undefined : lowestOf(entry.engines.node);
        return theirs !== undefined && isBelow(ours, theirs);
      })
      .map(([path, entry]) => `${path} (${entry.engines!.node})`);
    assert.deepEqual(askingForNewer, []);
  });
});
