import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { projectRoot } from '../../src/support/project-root.ts';

function readJson(file: string): unknown {
  return JSON.parse(readFileSync(join(projectRoot(), file), 'utf8'));
}

/** The names of the locked packages npm marks as having an install script (`node_modules/a/node_modules/@s/b` → `@s/b`). */
function lockedWithInstallScripts(): string[] {
  const lock = readJson('package-lock.json') as { packages: Record<string, { hasInstallScript?: boolean }> };
  const names = new Set<string>();
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (entry.hasInstallScript !== true) continue;
    names.add(path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length));
  }
  return [...names].sort();
}

// npm 11 ends every install with a warning naming each dependency whose install script `allowScripts` does not
// mention, and npm 12 skips those scripts: a dependency that gains one must be decided on in package.json.
describe('install scripts', () => {
  it('every locked package with an install script is decided on in allowScripts, and nothing else is', () => {
    const manifest = readJson('package.json') as { allowScripts?: Record<string, boolean> };
    const decided = Object.keys(manifest.allowScripts ?? {}).sort();
    assert.deepEqual(decided, lockedWithInstallScripts());
  });
});
