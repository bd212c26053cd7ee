import assert from 'node:assert/strict';
import { appendFile, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { buildStep, npm } from '../helpers/build-step.ts';
import { projectCopy } from '../helpers/project-copy.ts';

// Apart from build.test.ts so that each file stays well within the runner's 300 s a file (see
// test/helpers/build-step.ts).
describe('npm start’s build step, as the sources change', () => {
  it('builds when the sources changed since the last build (by content), or a build failed, or an output is gone, and not otherwise', { timeout: 270_000 }, async () => {
    // Three builds: ~15 s each on a quiet machine, ~40 s at a load of 9.
    const dir = await projectCopy();
    try {
      // A build run by hand counts as well: `npm run build` stamps what it built from.
      const byHand = await npm(dir, 'run', 'build', '--silent');
      assert.equal(byHand.code, 0, byHand.output);
      assert.deepEqual(await buildStep(dir), { code: 0, output: 'build: up to date (dist/)\n' });

      // A changed source needs a build; the same content again does not (a checkout that only touched it).
      const logger = join(dir, 'src', 'logging', 'logger.ts');
      const original = await readFile(logger);
      await appendFile(logger, '\n// changed\n');
      assert.equal((await buildStep(dir, '--check')).code, 1);
      await writeFile(logger, original);
      assert.equal((await buildStep(dir, '--check')).code, 0);

      // A failed build never looks current, even once the sources are back as they were stamped: tsc has
      // written its output anyway.
      await appendFile(logger, '\nconst broken: number = "not a number";\n');
      const failed = await buildStep(dir);
      assert.notEqual(failed.code, 0, failed.output);
      await writeFile(logger, original);
      assert.equal((await buildStep(dir, '--check')).code, 1);

      // An output gone (a cleaned dist/) is built again, though tsc's incremental record says it is there.
      await rm(join(dir, 'dist', 'src', 'main.js'));
      assert.equal((await buildStep(dir, '--check')).code, 1);
      const rebuilt = await buildStep(dir);
      assert.equal(rebuilt.code, 0, rebuilt.output);
      await readFile(join(dir, 'dist', 'src', 'main.js'));
      assert.equal((await buildStep(dir, '--check')).code, 0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
