import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, it } from 'node:test';
import { projectRoot } from '../../src/support/project-root.ts';

// Every other test, and every command npm runs, starts in the project's folder: a gateway started from
// elsewhere (`node /srv/gateway/dist/src/main.js` under a process manager that sets no working directory) must
// find its schema all the same.
describe('projectRoot', () => {
  it('finds the project from its own file, whatever the working directory', () => {
    const root = projectRoot();
    const module = pathToFileURL(join(root, 'src', 'support', 'project-root.ts')).href;
    const child = spawnSync(
      process.execPath,
      ['--import', import.meta.resolve('tsx'), '--input-type=module', '-e', `process.stdout.write((await import(${JSON.stringify(module)})).projectRoot())`],
      { cwd: tmpdir(), encoding: 'utf8' },
    );
    assert.equal(child.status, 0, child.stderr);
    assert.equal(child.stdout, root);
  });
});
