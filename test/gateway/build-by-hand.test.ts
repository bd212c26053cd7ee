import assert from 'node:assert/strict';
import { appendFile, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { buildStep, npm, stampedBuild } from '../helpers/build-step.ts';
import { projectCopy } from '../helpers/project-copy.ts';

// Apart from build.test.ts and build-changes.test.ts so that each file stays well within the runner's 300 s a
// file (see test/helpers/build-step.ts); one compile, which fails, and no IDE bundle.
describe('npm run build, by hand', () => {
  it('that failed leaves no build npm start takes for current, even once the sources are back as they were stamped', { timeout: 270_000 }, async () => {
    const dir = await projectCopy();
    try {
      await stampedBuild(dir);
      // A change tsc refuses, built by hand: tsc writes its output all the same. Then `git stash`, say, brings
      // back the sources the stamp was made from, and npm start would run what tsc wrote from the change.
      const logger = join(dir, 'src', 'logging', 'logger.ts');
      const original = await readFile(logger);
      await appendFile(logger, '\nconst broken: number = "not a number";\n');
      const failed = await npm(dir, 'run', 'build', '--silent');
      assert.notEqual(failed.code, 0, failed.output);
      await writeFile(logger, original);
      assert.deepEqual(await buildStep(dir, '--check'), { code: 1, output: 'build: needed\n' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
