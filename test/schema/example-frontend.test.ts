import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, describe, it } from 'node:test';
import { parse } from 'graphql';
import { startExample } from '../../examples/frontend/serve.ts';
import { projectRoot } from '../../src/project-root.ts';

/**
 * examples/frontend/src/gql/ is generated from the example's operations and is not committed, so a checkout
 * keeps whatever an earlier run made. Generated before an operation changed (edited, or changed by a pull), its
 * `graphql()` does not know the operation's new text and returns `{}`, which the page would send as the query
 * "[object Object]". `npm run example:frontend` must serve what the operations say.
 */
describe('the example frontend', () => {
  const example = join(projectRoot(), 'examples', 'frontend');
  const generated = join(example, 'src', 'gql');
  const generate = () =>
    execFileSync(process.execPath, [join(projectRoot(), 'scripts', 'codegen.mjs'), '--config', 'codegen.yml', '--silent'], {
      cwd: example,
      stdio: 'inherit',
    });

  // Whatever the test left in src/gql/, the next typecheck and run find it made from the operations.
  after(generate);

  it('regenerates its typed documents when it starts, so a stale src/gql/ is not what the page sends', async () => {
    generate();
    // As generated before ConnectedAccount asked for the sources' `server`.
    for (const file of ['gql.ts', 'graphql.ts']) {
      const path = join(generated, file);
      const current = readFileSync(path, 'utf8');
      const stale = current.replaceAll(/\\n +server(?=\\n)|\n +server(?=\n)/g, '');
      assert.notEqual(stale, current, `${file} has the operation's server field to take out`);
      writeFileSync(path, stale);
    }

    // Starting it is the step under test; the gateway URL is only written into its pages, never called here.
    const server = await startExample({ port: 0, gatewayUrl: 'http://127.0.0.1:1/graphql' });
    await server.close();

    // Imported by path (not a literal): src/gql/ may not exist when the project's typecheck runs.
    const operations = (await import(pathToFileURL(join(example, 'src', 'operations.ts')).href)) as Record<string, { toString(): string }>;
    const query = String(operations['ConnectedAccount']);
    assert.match(query, /\bquery ConnectedAccount\b/);
    assert.match(query, /\bserver\b/);
    assert.equal(parse(query).definitions.length, 1);
  });
});
