import assert from 'node:assert/strict';
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, describe, it } from 'node:test';
import { parse } from 'graphql';
import { startExample } from '../../examples/frontend/serve.ts';
import { projectRoot } from '../../src/support/project-root.ts';
import { closeServer, listenOnLoopback } from '../helpers/net.ts';

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

// The endpoint is written into the pages' <meta>: '&' and '"' were dropped rather than escaped, so a gateway
// URL whose query has two parameters (a function host's key and another) reached the page as another URL. And
// a '$' is kept as it is: written in as a replacement string, '$$' became '$', and a '$' before a character the
// escaping turns into an entity ('&', '"', "'") made '$&', which wrote '%GRAPHQL_ENDPOINT%' into the URL.
describe('the example frontend\'s pages', () => {
  it('carry the gateway URL as it was given, query and all', async () => {
    const gatewayUrl = 'http://127.0.0.1:1/graphql?code=abc&region=eu&q="x"&price=$&sig=a$$b';
    const server = await startExample({ port: 0, gatewayUrl });
    try {
      for (const path of ['', 'callback']) {
        const html = await (await fetch(`${server.url}${path}`)).text();
        const meta = /<meta name="graphql-endpoint" content="([^"]*)">/.exec(html);
        assert.ok(meta, `the ${path || 'start'} page has the endpoint's meta`);
        const named: Record<string, string> = { quot: '"', lt: '<', gt: '>', amp: '&', apos: "'" };
        const decoded = meta[1]!.replace(/&(?:#(\d+)|(\w+));/g, (entity, code: string | undefined, name: string | undefined) =>
          code !== undefined ? String.fromCharCode(Number(code)) : (named[name!] ?? entity),
        );
        assert.equal(decoded, gatewayUrl);
      }
    } finally {
      await server.close();
    }
  });
});

/**
 * `npm run example:codegen` (run by `npm test`'s typecheck:clients and at each `npm run example:frontend`) is
 * `--silent`, which hid the generator's errors too: a schema change that breaks the example's operations, the
 * very case it is there to catch, said only "One or more errors occurred, no files were generated", not which
 * field of which operation. Run on a copy of what it reads, so that the project's schema stays as it is.
 */
describe('npm run example:codegen', () => {
  const root = projectRoot();
  function runOnSchema(edit: (sdl: string) => string) {
    const dir = mkdtempSync(join(tmpdir(), 'example-codegen-test-'));
    try {
      for (const path of ['scripts/codegen.mjs', 'examples/frontend/codegen.yml']) cpSync(join(root, path), join(dir, path));
      cpSync(join(root, 'examples', 'frontend', 'src'), join(dir, 'examples', 'frontend', 'src'), {
        recursive: true,
        filter: (source) => !source.includes(join('src', 'gql')),
      });
      symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir');
      writeFileSync(join(dir, 'schema.graphql'), edit(readFileSync(join(root, 'schema.graphql'), 'utf8')));
      const run = spawnSync(process.execPath, [join(dir, 'scripts', 'codegen.mjs'), '--config', 'codegen.yml', '--silent'], {
        cwd: join(dir, 'examples', 'frontend'),
        encoding: 'utf8',
      });
      return { status: run.status, output: run.stdout + run.stderr };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('says which field of which operation a schema change broke', () => {
    const { status, output } = runOnSchema((sdl) => {
      const renamed = sdl.replace(/^ {2}server: String$/m, '  serverHost: String');
      assert.notEqual(renamed, sdl, 'the schema has the sources\' server field to rename');
      return renamed;
    });
    assert.equal(status, 1, output);
    assert.match(output, /Cannot query field "server" on type "Source"/);
    assert.match(output, /src\/operations\.ts:\d+:\d+/);
  });

  // `npm run example:frontend` regenerates them at each start: it said why above, then a stack trace of its own.
  it('stops npm run example:frontend with one line after the generator\'s output, no stack trace', (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'example-codegen-test-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    for (const path of ['package.json', 'src', 'scripts/codegen.mjs', 'examples/frontend']) {
      cpSync(join(root, path), join(dir, path), { recursive: true, filter: (source) => !source.includes(join('src', 'gql')) });
    }
    symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir');
    writeFileSync(join(dir, 'schema.graphql'), readFileSync(join(root, 'schema.graphql'), 'utf8').replace(/^ {2}server: String$/m, '  serverHost: String'));
    const run = spawnSync(process.execPath, ['--import', 'tsx', join(dir, 'examples', 'frontend', 'serve.ts')], {
      env: { PATH: process.env['PATH'] ?? '', EXAMPLE_PORT: '0' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(run.status, 1, run.stderr);
    assert.match(run.stderr, /Cannot query field "server" on type "Source"/);
    assert.ok(!/\n\s+at /.test(run.stderr.replace(/\n\s+at \/.*operations\.ts:\d+:\d+\]/, '')), `no stack trace:\n${run.stderr}`);
    assert.match(run.stderr, /\nexample:frontend: GraphQL Code Generator failed on the example's operations \(its output above\)\n$/);
  });

  it('prints nothing when it succeeds', () => {
    const { status, output } = runOnSchema((sdl) => sdl);
    assert.equal(status, 0, output);
    assert.equal(output, '');
  });
});

/**
 * `npm run example:frontend` with a port it cannot use says so in one line naming EXAMPLE_PORT, as `npm start`
 * does for PORT, rather than a stack trace: its default, 5173, is Vite's too, so a frontend developer often has
 * it taken. A GATEWAY_URL that is no http(s) URL is refused the same way.
 */
describe('npm run example:frontend with a setting it cannot use', () => {
  const serve = join(projectRoot(), 'examples', 'frontend', 'serve.ts');
  // `timeout`: an example that starts when it should refuse is stopped, and fails the test, rather than hanging it.
  const runExample = (port: string, env: Record<string, string> = {}, args: string[] = []) =>
    new Promise<{ status: number | null; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        ['--import', 'tsx', serve, ...args],
        { env: { PATH: process.env['PATH'] ?? '', EXAMPLE_PORT: port, ...env }, timeout: 30_000 },
        (error, _stdout, stderr) => resolve({ status: error ? (error.code as number | null) : 0, stderr }),
      );
    });

  it('names EXAMPLE_PORT when the port is in use, without a stack trace', async () => {
    const taken = createServer();
    const port = await listenOnLoopback(taken);
    try {
      const result = await runExample(String(port));
      assert.equal(result.status, 1, result.stderr);
      assert.equal(result.stderr, `example:frontend: EXAMPLE_PORT=${port}: the port is already in use on 127.0.0.1 (choose another; 0 picks a free one)\n`);
    } finally {
      await closeServer(taken);
    }
  });

  it('refuses an EXAMPLE_PORT that is no port, quoting it', async () => {
    const result = await runExample('abc');
    assert.equal(result.status, 1, result.stderr);
    assert.equal(result.stderr, 'example:frontend: EXAMPLE_PORT must be a whole number from 0 to 65535 (got "abc")\n');
  });

  // A GATEWAY_URL without its scheme (`localhost:4000/graphql`) started the app, whose page then sent its every
  // request to a URL of scheme `localhost:`, which the browser refuses: found only at the first click.
  it('refuses a GATEWAY_URL that is no http(s) URL, naming it', async () => {
    const result = await runExample('0', { GATEWAY_URL: 'localhost:4000/graphql' });
    assert.equal(result.status, 1, result.stderr);
    assert.equal(
      result.stderr,
      'example:frontend: GATEWAY_URL must be a running gateway\'s http:// or https:// URL, such as http://localhost:4000/graphql (got "localhost:4000/graphql")\n',
    );
  });

  // `npm run example:frontend -- --port 3000` started the app on 5173 as if nothing had been asked.
  it('refuses an argument, saying it is set through the environment', async () => {
    const result = await runExample('0', {}, ['--port', '3000']);
    assert.equal(result.status, 1, result.stderr);
    assert.equal(result.stderr, 'example:frontend: takes no arguments (got "--port" "3000"): it is set through the environment, EXAMPLE_PORT and GATEWAY_URL (examples/frontend/README.md)\n');
  });

  // Browsers refuse to fetch a URL with credentials in it (a TypeError), so the page could send nothing, and the
  // app's start line printed the password, as the URL written into every page it served held it.
  it('refuses a GATEWAY_URL with credentials in it, without showing them', async () => {
    const result = await runExample('0', { GATEWAY_URL: 'http://user:hunter2@127.0.0.1:4000/graphql' });
    assert.equal(result.status, 1, result.stderr);
    assert.ok(!result.stderr.includes('hunter2'), result.stderr);
    assert.equal(
      result.stderr,
      'example:frontend: GATEWAY_URL must not carry credentials (user:password@): browsers refuse to fetch a URL with them\n',
    );
  });

  it('does not show a GATEWAY_URL that may carry credentials', async () => {
    const result = await runExample('0', { GATEWAY_URL: 'ftp://user:hunter2@gw.example/graphql' });
    assert.equal(result.status, 1, result.stderr);
    assert.ok(!result.stderr.includes('hunter2'), result.stderr);
    assert.match(result.stderr, /^example:frontend: GATEWAY_URL must be /);
  });
});
