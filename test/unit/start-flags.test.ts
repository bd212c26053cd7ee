import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { startNodeFlags } from '../../scripts/start-flags.ts';
import { projectRoot } from '../../src/support/project-root.ts';

// The bench and the soak run the gateway with these flags, to measure it as `npm start` runs it: a flag lost or
// an empty one added here would measure (or fail to start) another gateway than the deployed one.
describe('startNodeFlags', () => {
  it('gives exactly the flags package.json’s start script writes before dist/src/main.js', () => {
    const manifest = JSON.parse(readFileSync(join(projectRoot(), 'package.json'), 'utf8')) as { scripts: { start: string } };
    const flags = startNodeFlags();
    assert.ok(flags.length > 0 && flags.every((flag) => /^--\S+$/.test(flag)), `each a flag of its own: ${JSON.stringify(flags)}`);
    assert.ok(manifest.scripts.start.includes(`node ${flags.join(' ')} dist/src/main.js`), `${JSON.stringify(flags)} are not those of ${manifest.scripts.start}`);
  });

  it('gives none for a start script without flags, and refuses one of another shape naming the file to update', () => {
    assert.deepEqual(startNodeFlags('node scripts/build-if-needed.mjs && exec node dist/src/main.js'), []);
    for (const script of ['node --max-semi-space-size=32 dist/main.js', 'tsx --max-semi-space-size=32 src/main.ts', '']) {
      assert.throws(() => startNodeFlags(script), /the start script no longer runs `node \[flags\] dist\/src\/main\.js`; update scripts\/start-flags\.ts/, script);
    }
  });
});
