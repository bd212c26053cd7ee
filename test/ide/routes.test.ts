import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type ServerResponse } from 'node:http';
import { once } from 'node:events';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { after, before, test, type TestContext } from 'node:test';
import { request } from 'undici';
import { createIde } from '../../src/ide/index.ts';
import { streamOnceFlushed } from '../../src/http/respond.ts';
import { hsToken } from '../auth/helpers.ts';
import { eventually } from '../helpers/eventually.ts';
import { closeServer, listenOnLoopback, rawGraphQLPost } from '../helpers/net.ts';
import { startStack, type Stack } from '../helpers/stack.ts';
import { ensureIdeBuilt } from '../browser/browser.ts';

/** The IDE's HTTP surface, without a browser: who gets the page, how assets are served, and what is refused. */

let stack: Stack;
const BROWSER_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';

before(async () => {
  ensureIdeBuilt();
  stack = await startStack();
});
after(async () => {
  await stack?.close();
});

async function get(path: string, headers: Record<string, string> = {}, method: 'GET' | 'HEAD' | 'POST' = 'GET') {
  const response = await request(stack.gateway.origin + path, { method, headers });
  const body = Buffer.from(await response.body.arrayBuffer());
  return { status: response.statusCode, headers: response.headers, body };
}

test('a browser opening /graphql gets the IDE page, with a same-origin-only CSP', async () => {
  const page = await get('/graphql', { accept: BROWSER_ACCEPT });
  assert.equal(page.status, 200);
  assert.match(String(page.headers['content-type']), /^text\/html; charset=utf-8/);
  assert.equal(page.headers['cache-control'], 'no-cache');
  const csp = String(page.headers['content-security-policy']);
  assert.match(csp, /script-src 'self'/);
  assert.match(csp, /connect-src 'self'/);
  // Never framed: the CSP says so to current browsers, X-Frame-Options to older ones and to scanners that ask.
  assert.match(csp, /frame-ancestors 'none'/);
  assert.equal(page.headers['x-frame-options'], 'DENY');
  assert.equal(page.headers['referrer-policy'], 'no-referrer', 'links from the page do not send the gateway’s address');
  const html = page.body.toString('utf8');
  // Relative to the page's own address, so that a proxy mounting the gateway under a prefix serves them too.
  assert.match(html, /<script type="module" src="graphql\/ide\/app-[A-Z0-9]+\.js"><\/script>/);
  assert.match(html, /<link rel="stylesheet" href="graphql\/ide\/app-[A-Z0-9]+\.css">/);
  assert.doesNotMatch(html, /https?:\/\//, 'the page refers to nothing outside the gateway');
  // An empty icon of its own: else the browser asks for /favicon.ico, a 404 in its console at every visit.
  assert.match(html, /<link rel="icon" href="data:,">/);
  assert.match(String(page.headers['content-security-policy']), /img-src [^;]*data:/, 'the CSP lets the icon load');
  assert.match(html, /query AccountsWithSources/);
  // text/html named anywhere in the list, in any case (media types are case-insensitive), is a browser's.
  for (const accept of ['application/xhtml+xml, text/html', 'TEXT/HTML']) assert.equal((await get('/graphql', { accept })).status, 200, accept);
  // HEAD is answered as GET is, without the page.
  const head = await get('/graphql', { accept: BROWSER_ACCEPT }, 'HEAD');
  assert.deepEqual([head.status, head.headers['content-type'], head.body.length], [200, page.headers['content-type'], 0]);
  assert.equal(Number(head.headers['content-length']), page.body.length);
});

/** The gateway's path of the IDE page's script, which the page names relative to its own address. */
async function appScriptPath(): Promise<string> {
  const html = (await get('/graphql', { accept: BROWSER_ACCEPT })).body.toString('utf8');
  return `/${/src="(graphql\/ide\/app-[A-Z0-9]+\.js)"/.exec(html)![1]!}`;
}

/** The configuration the IDE page hands its script. */
interface IdeConfig {
  defaultHeaders: string;
  defaultQuery: string;
  tokenRequired: boolean;
  introspection: boolean;
  workers: Record<string, string>;
}
function ideConfigOf(html: string): IdeConfig {
  const json = /<script id="ide-config" type="application\/json">([^<]*)<\/script>/.exec(html)![1]!;
  return JSON.parse(json) as IdeConfig;
}

test('with authentication off, the IDE opens with no Authorization header and says no token is needed', async () => {
  const config = ideConfigOf((await get('/graphql', { accept: BROWSER_ACCEPT })).body.toString('utf8'));
  assert.equal(config.defaultHeaders, '');
  assert.match(config.defaultQuery, /No token: auth is off here/);
  // The run key as each platform has it: Monaco binds Ctrl-Enter, and Cmd-Enter on a Mac.
  assert.match(config.defaultQuery, /^# ▶ or Ctrl-Enter \(⌘-Enter on a Mac\) runs it\.\n/);
  assert.match(config.defaultQuery, /Docs: the panel on the left/, 'introspection is on in open mode');
  assert.deepEqual([config.tokenRequired, config.introspection], [false, true]);
  // Each of the editor's workers is its own built file, relative to the page.
  for (const [name, path] of Object.entries(config.workers)) assert.match(path, new RegExp(`^graphql/ide/${name}\\.worker-[A-Z0-9]+\\.js$`), name);
  assert.deepEqual(Object.keys(config.workers).sort(), ['editor', 'graphql', 'json']);
});

test('with authentication on, the IDE opens with an Authorization header to fill in', async () => {
  const secured = await startStack({ gateway: { auth: { jwtSecret: 'ide-test-secret-of-at-least-32-bytes!!' } } });
  try {
    const response = await request(`${secured.gateway.origin}/graphql`, { headers: { accept: BROWSER_ACCEPT } });
    assert.equal(response.statusCode, 200, 'the page itself needs no token');
    const config = ideConfigOf(await response.body.text());
    assert.deepEqual(JSON.parse(config.defaultHeaders), { Authorization: 'Bearer <token>' });
    assert.match(config.defaultQuery, /Token: in Headers, below/);
    // Introspection is off by default with authentication on: the page has no docs panel, so the example does
    // not send the reader there, but to the published schema.
    assert.doesNotMatch(config.defaultQuery, /Docs: the panel/);
    assert.match(config.defaultQuery, /^# No docs: introspection off\.\n# Schema: schema\.graphql in the gateway’s source\.\n/m);
    assert.equal(config.introspection, false, 'the page asks for no schema');
    // A client without a query and without a token learns first that it needs a token; with one, what to send.
    const tokenless = await request(`${secured.gateway.origin}/graphql`, { headers: { accept: 'application/json' } });
    assert.equal(tokenless.statusCode, 401);
    await tokenless.body.dump();
    const token = await hsToken({ sub: 'ide-user' }, 'ide-test-secret-of-at-least-32-bytes!!');
    const queryless = await request(`${secured.gateway.origin}/graphql`, { headers: { accept: 'application/json', authorization: `Bearer ${token}` } });
    assert.equal(queryless.statusCode, 400);
    assert.match(await queryless.body.text(), /GET \/graphql needs a query/);
  } finally {
    await secured.close();
  }
});

test('with authentication and introspection on, the IDE says the docs come once a query has run (with the token)', async () => {
  const secured = await startStack({ gateway: { auth: { jwtSecret: 'ide-test-secret-of-at-least-32-bytes!!' }, introspection: true } });
  try {
    const response = await request(`${secured.gateway.origin}/graphql`, { headers: { accept: BROWSER_ACCEPT } });
    const config = ideConfigOf(await response.body.text());
    assert.match(config.defaultQuery, /Docs: on the left, once a query ran\./);
    assert.equal(config.tokenRequired, true, 'the page asks for the schema only once a token was taken');
  } finally {
    await secured.close();
  }
});

test('with the IDE turned off (IDE=false), a browser gets a 404 page saying so, its files are 404, and GraphQL clients are served as ever', async () => {
  const assetPath = await appScriptPath();
  const off = await startStack({ gateway: { ide: false } });
  try {
    const get = async (path: string, headers: Record<string, string>) => {
      const response = await request(off.gateway.origin + path, { headers });
      return { status: response.statusCode, headers: response.headers, text: await response.body.text() };
    };
    for (const path of ['/graphql', '/graphql/']) {
      const page = await get(path, { accept: BROWSER_ACCEPT });
      assert.equal(page.status, 404, path);
      assert.match(String(page.headers['content-type']), /^text\/html; charset=utf-8/);
      assert.match(page.text, /<h1>The GraphQL IDE is turned off<\/h1>/);
      assert.match(page.text, /<code>IDE=false<\/code>/);
      assert.doesNotMatch(page.text, /<script/, 'no script of the IDE is named');
    }
    const asset = await get(assetPath, {});
    assert.equal(asset.status, 404);
    assert.equal(asset.text, 'the GraphQL IDE is turned off on this gateway (IDE=false)');
    off.upstreamCalls();
    const query = await get('/graphql?query=%7Baccounts%7Bnodes%7Bid%7D%7D%7D', { accept: 'application/json', 'apollo-require-preflight': 'true' });
    assert.equal(query.status, 200, query.text);
    assert.ok(Array.isArray(JSON.parse(query.text).data.accounts.nodes), query.text);
    assert.deepEqual(off.upstreamCalls(), ['GET /accounts']);
  } finally {
    await off.close();
  }
});

test('a browser opening /graphql/ (a trailing slash) is sent to /graphql, relatively (a proxy’s prefix kept); a client gets the 404', async () => {
  for (const [path, location] of [
    ['/graphql/', '../graphql'],
    ['/graphql/?tab=2', '../graphql?tab=2'],
  ]) {
    const redirected = await get(path!, { accept: BROWSER_ACCEPT });
    assert.equal(redirected.status, 308, path);
    assert.equal(redirected.headers['location'], location);
    // The same address answers a client's Accept with a 404: a cache must not give either the other's answer.
    assert.equal(redirected.headers['vary'], 'accept');
    // Resolved by the browser against the address it asked for, behind a proxy's prefix too.
    assert.equal(new URL(location!, `https://example.com/api${path}`).pathname, '/api/graphql');
  }
  const client = await get('/graphql/', { accept: 'application/json' });
  assert.equal(client.status, 404);
  assert.match(client.body.toString(), /GraphQL is served on \/graphql/);
});

test('GraphQL over GET is unchanged: a query parameter or a non-HTML Accept goes to the GraphQL endpoint', async () => {
  const withQuery = await get('/graphql?query=%7B__typename%7D', { accept: BROWSER_ACCEPT, 'apollo-require-preflight': 'true' });
  assert.equal(withQuery.status, 200);
  assert.deepEqual(JSON.parse(withQuery.body.toString()), { data: { __typename: 'Query' } });

  // A GraphQL client (or curl) without a query is told what to send, not the IDE's page, nor Apollo's answer
  // that it was blocked as a possible cross-site request forgery (which asks for a preflight header first).
  // q=0 however written (RFC 9110 §12.4.2 allows up to three zero decimals) says "never HTML".
  // An empty `extensions` is none (the GraphQL-over-HTTP spec: an optional parameter sent empty is not sent).
  for (const [path, accept] of [
    ...['application/json', '*/*', 'text/html;q=0, application/json', 'text/html; q=0.000, application/json'].map((accept) => ['/graphql', accept] as const),
    ['/graphql?extensions=', 'application/json'],
    ['/graphql?operationName=&variables=&extensions=', '*/*'],
  ] as const) {
    const client = await get(path, { accept });
    assert.equal(client.status, 400, `${path} ${accept}`);
    assert.match(String(client.headers['content-type']), /json/);
    const { errors } = JSON.parse(client.body.toString()) as { errors: Array<{ message: string; extensions: { code: string } }> };
    assert.equal(errors[0]!.extensions.code, 'BAD_REQUEST');
    assert.match(errors[0]!.message, /^GET \/graphql needs a query: \?query=/);
  }
  // A persisted query's hash alone is a query: Apollo's to answer (here, as one it does not know yet), whatever
  // the Accept header says.
  for (const accept of ['application/json', BROWSER_ACCEPT]) {
    const persisted = await get(`/graphql?extensions=${encodeURIComponent(JSON.stringify({ persistedQuery: { version: 1, sha256Hash: 'ab'.repeat(32) } }))}`, {
      accept,
      'apollo-require-preflight': 'true',
    });
    assert.match(persisted.body.toString(), /PERSISTED_QUERY_NOT_FOUND/, accept);
  }
});

test('assets are served with their content type, long-lived caching and gzip when accepted', async () => {
  const html = (await get('/graphql', { accept: 'text/html' })).body.toString();
  const script = await appScriptPath();
  const style = `/${/href="(graphql\/ide\/app-[A-Z0-9]+\.css)"/.exec(html)![1]!}`;

  const plain = await get(script);
  assert.equal(plain.status, 200);
  assert.equal(plain.headers['content-type'], 'text/javascript; charset=utf-8');
  assert.equal(plain.headers['cache-control'], 'public, max-age=31536000, immutable');
  assert.equal(plain.headers['content-encoding'], undefined);
  // Gzipped or not by the request's Accept-Encoding: a cache must keep the two apart.
  assert.equal(plain.headers['vary'], 'accept-encoding');
  // A worker runs under its own script's policy, not the page's: the editors' workers may load and fetch nothing.
  assert.equal(plain.headers['content-security-policy'], "default-src 'none'; frame-ancestors 'none'");

  const gzipped = await get(script, { 'accept-encoding': 'gzip, br' });
  assert.equal(gzipped.headers['content-encoding'], 'gzip');
  assert.ok(gunzipSync(gzipped.body).equals(plain.body), 'the gzipped script is the plain one');
  // gzip named anywhere in the list, in any case: content codings are case-insensitive.
  for (const accepted of ['br, gzip', 'deflate, GZIP;q=0.5']) assert.equal((await get(script, { 'accept-encoding': accepted })).headers['content-encoding'], 'gzip', accepted);

  for (const refused of ['gzip;q=0', 'gzip;q=0.0, identity']) {
    const css = await get(style, { 'accept-encoding': refused });
    assert.equal(css.headers['content-type'], 'text/css; charset=utf-8');
    assert.equal(css.headers['content-encoding'], undefined, refused);
  }

  const head = await get(script, {}, 'HEAD');
  assert.equal(head.status, 200);
  assert.equal(head.body.length, 0);
  assert.equal(Number(head.headers['content-length']), plain.body.length);

  // A 405 names the methods the resource has (RFC 9110 §15.5.6).
  const post = await get(script, {}, 'POST');
  assert.equal(post.status, 405);
  assert.equal(post.headers['allow'], 'GET, HEAD');
});

test('only the built files are servable: traversal, the manifest and unknown names are 404', async () => {
  for (const path of [
    '/graphql/ide/../../package.json',
    '/graphql/ide/..%2f..%2fpackage.json',
    '/graphql/ide/%2e%2e/%2e%2e/package.json',
    '/graphql/ide/manifest.json',
    '/graphql/ide/app.js',
    '/graphql/ide/',
    '/graphql/ide/%00',
  ]) {
    const response = await get(path);
    assert.ok(response.status === 404, `${path} -> ${response.status}`);
    assert.doesNotMatch(response.body.toString(), /"name": "contextio-graphql"/);
  }
});

/**
 * The origin of a server on loopback answering with an IDE whose assets are read from `dir` (404 for whatever
 * the IDE does not handle, 500 when it fails); the server is stopped and `dir` removed when the test `t` ends.
 */
async function serveIdeFrom(t: TestContext, dir: string): Promise<string> {
  const ide = createIde({ assetDir: dir });
  const server = createServer((req, res) => {
    ide.handle(req, res, new URL(req.url ?? '/', 'http://x')).then(
      (handled) => {
        if (!handled) res.writeHead(404).end();
      },
      // As the gateway answers an error of its handler: a failing IDE fails the test's request instead of hanging it.
      () => res.writeHead(500).end(),
    );
  });
  const port = await listenOnLoopback(server);
  t.after(async () => {
    await closeServer(server);
    await rm(dir, { recursive: true, force: true });
  });
  return `http://127.0.0.1:${port}`;
}

test('a file beside the bundle that the manifest does not name (an older build’s) is 404', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ide-stale-'));
  await writeFile(join(dir, 'manifest.json'), JSON.stringify({ assets: { 'app.js': 'app-NEW.js', 'notes.txt': 'notes-NEW.txt', 'gone.js': 'gone-NEW.js' } }));
  await writeFile(join(dir, 'app-NEW.js'), 'new();');
  await writeFile(join(dir, 'app-OLD.js'), 'old();');
  await writeFile(join(dir, 'notes-NEW.txt'), 'notes');
  const origin = await serveIdeFrom(t, dir);
  const fresh = await request(`${origin}/graphql/ide/app-NEW.js`);
  assert.deepEqual([fresh.statusCode, await fresh.body.text()], [200, 'new();']);
  const stale = await request(`${origin}/graphql/ide/app-OLD.js`);
  assert.equal(stale.statusCode, 404);
  await stale.body.dump();
  // Named, but of no type the IDE serves (scripts and styles only).
  const untyped = await request(`${origin}/graphql/ide/notes-NEW.txt`);
  assert.equal(untyped.statusCode, 404);
  await untyped.body.dump();
  // Named, but missing beside the manifest (a build cut short): unknown all the same.
  const missing = await request(`${origin}/graphql/ide/gone-NEW.js`);
  assert.equal(missing.statusCode, 404);
  await missing.body.dump();
});

test('an asset whose file fails while it is sent is cut off, not ended as if whole', async (t) => {
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' });
    const source = new Readable({ read() {} });
    streamOnceFlushed(source, res);
    source.push('first part;');
    setImmediate(() => source.destroy(new Error('EIO: the disk failed')));
  });
  const port = await listenOnLoopback(server);
  t.after(() => closeServer(server));
  const response = await request(`http://127.0.0.1:${port}/graphql/ide/app.js`);
  await assert.rejects(response.body.text(), 'the client sees the answer fail, not a complete one');
});

test('an asset is read no faster than its client takes it: a client not reading holds the file paused, and gets it whole once it reads', async (t) => {
  const CHUNK = 64 * 1024;
  const TOTAL = 64 * 1024 * 1024;
  let produced = 0;
  // Made as it is read, as a file stream is: pulled past what the client takes, all of it would wait in memory.
  const source = new Readable({
    read() {
      const done = produced >= TOTAL;
      if (!done) produced += CHUNK;
      this.push(done ? null : Buffer.alloc(CHUNK, 0x61));
    },
  });
  let finished = false;
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8', 'content-length': TOTAL });
    res.once('finish', () => (finished = true));
    streamOnceFlushed(source, res);
  });
  const port = await listenOnLoopback(server);
  t.after(() => closeServer(server));
  const client = connect(port, '127.0.0.1');
  t.after(() => client.destroy());
  client.pause();
  client.write('GET /graphql/ide/app.js HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n');
  await eventually(() => source.isPaused(), { what: 'the source paused while its client reads nothing' });
  assert.ok(produced < TOTAL / 2, `read ${produced} of ${TOTAL} bytes ahead of a client that took none`);
  let received = 0;
  client.on('data', (chunk: Buffer) => (received += chunk.length));
  client.resume();
  await eventually(() => finished && received > TOTAL, { what: 'the whole body received, and the response ended' });
});

test('an asset is ended only once its last chunk is out of the process: a shutdown closes the connection of an answer ended, its tail still held', async () => {
  // Node's close() and closeIdleConnections() destroy a connection whose answer has ended, flushed or not: ended
  // as its file ends, an asset whose client reads slowly lost its tail at every shutdown.
  const flushes: Array<() => void> = [];
  const res = new Writable({ write: (_chunk, _encoding, flushed) => void flushes.push(flushed) });
  const source = Readable.from([Buffer.from('first part;'), Buffer.from('last part;')]);
  streamOnceFlushed(source, res as unknown as ServerResponse);
  await once(source, 'end');
  assert.equal(res.writableEnded, false, 'ended as its file ended, its chunks still unflushed');
  // The chunks flushed one after another, as a client takes them: ended once the last one is.
  await eventually(() => {
    for (const flushed of flushes.splice(0)) flushed();
    return res.writableEnded;
  }, { what: 'the answer ended once all of it is flushed' });
  assert.equal(flushes.length, 0, 'ended with a chunk still unflushed');
});

test('without a built bundle the IDE answers 503 saying how to build it', async (t) => {
  const empty = await mkdtemp(join(tmpdir(), 'ide-missing-'));
  const origin = await serveIdeFrom(t, empty);
  const response = await request(`${origin}/graphql`, { headers: { accept: 'text/html' } });
  assert.equal(response.statusCode, 503);
  assert.match(String(response.headers['content-type']), /^text\/html/);
  const html = await response.body.text();
  assert.match(html, /npm run build/);
  // Where a developer looks at the console, as on the built page: no /favicon.ico 404 beside the 503.
  assert.match(html, /<link rel="icon" href="data:,">/);
  // On a phone, as the built page: laid out for the screen's width, not a desktop's shrunk to it.
  assert.match(html, /<meta name="viewport" content="width=device-width, initial-scale=1">/);
});

test('a build that left out the page’s script or style, or a manifest of no assets, is answered as not built', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ide-partial-'));
  const origin = await serveIdeFrom(t, dir);
  for (const manifest of [{ assets: { 'app.js': 'app-X.js' } }, { assets: { 'app.css': 'app-X.css' } }, {}, { assets: null }]) {
    await writeFile(join(dir, 'manifest.json'), JSON.stringify(manifest));
    const response = await request(`${origin}/graphql`, { headers: { accept: 'text/html' } });
    assert.equal(response.statusCode, 503, JSON.stringify(manifest));
    // In a main landmark, as every page served to people is.
    assert.match(await response.body.text(), /<main>\n<h1>The GraphQL IDE is not built<\/h1>[\s\S]*npm run build[\s\S]*<\/main>/);
  }
});

test('a client that leaves while its asset is looked up leaves no open file behind', async () => {
  const script = await appScriptPath();
  const openFiles = () => readdirSync('/proc/self/fd').length;
  const before = openFiles();
  for (let i = 0; i < 50; i++) {
    const socket = connect(Number(new URL(stack.gateway.url).port), '127.0.0.1');
    await once(socket, 'connect');
    socket.write(`GET ${script} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n`);
    socket.destroy();
  }
  // The gateway notices each departure and closes what it opened; leaked, each asset's file stayed open. Not
  // back down in time, the check below fails all the same, and says by how many.
  await eventually(() => openFiles() <= before + 5).catch(() => {});
  assert.ok(openFiles() <= before + 5, `${openFiles() - before} more open files than before`);
  assert.equal((await get(script)).status, 200, 'and it still serves the asset');
});

test('assets queued behind a hung request on a connection that drops leave no open file behind', async () => {
  // Node 20 never closes a response queued behind another (pipelining) when its connection drops.
  const script = await appScriptPath();
  const id = stack.emulator.store.createAccount({ email: 'queued-assets@example.com' }).id;
  stack.emulator.addFault({ path: `/accounts/${id}`, hang: true });
  const openFiles = () => readdirSync('/proc/self/fd').length;
  const before = openFiles();
  for (let i = 0; i < 3; i++) {
    const socket = connect(Number(new URL(stack.gateway.url).port), '127.0.0.1');
    await once(socket, 'connect');
    socket.write(rawGraphQLPost(`{ account(id: "${id}") { id } }`));
    // 20, within what one connection may pipeline (MAX_PIPELINED, 32): past it the connection is closed at once.
    socket.write(`GET ${script} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n`.repeat(20));
    // The POST hangs upstream, so the assets are queued behind it when the connection drops.
    await eventually(() => stack.emulator.inFlight === 1);
    socket.destroy();
    // Its client gone, the operation is stopped, its upstream request too.
    await eventually(() => stack.emulator.inFlight === 0);
  }
  await eventually(() => openFiles() <= before + 5).catch(() => {}); // as above: the check says by how many
  assert.ok(openFiles() <= before + 5, `${openFiles() - before} more open files than before`);
});

/**
 * The IDE's answers in a process that has opened every file descriptor its limit allows (the limit reached
 * under load): a child of its own under `ulimit -n 256`, so that neither this process nor the machine runs
 * short. Its client's connection is opened (and used once) before, as a connection accepted then would be.
 */
async function ideAnswersOutOfDescriptors(): Promise<Array<{ path: string; status: number; retryAfter: string | undefined; body: string }>> {
  const script = `
    import { mkdtempSync, openSync, closeSync, rmSync, writeFileSync } from 'node:fs';
    import { Agent, createServer, get } from 'node:http';
    import { tmpdir } from 'node:os';
    import { join } from 'node:path';
    const { createIde } = await import(${JSON.stringify(new URL('../../src/ide/index.ts', import.meta.url).href)});
    const dir = mkdtempSync(join(tmpdir(), 'ide-descriptors-'));
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ assets: { 'app.js': 'app-1.js', 'app.css': 'app-1.css' } }));
    writeFileSync(join(dir, 'app-1.js'), 'app();');
    writeFileSync(join(dir, 'app-1.css'), 'body {}');
    const ide = createIde({ assetDir: dir });
    const server = createServer((req, res) => ide.handle(req, res, new URL(req.url, 'http://x')).catch(() => res.writeHead(500).end('handler failed')));
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const ask = (path, accept) => new Promise((resolve, reject) => {
      get({ host: '127.0.0.1', port: server.address().port, path, agent, headers: { accept } }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (chunk) => (body += chunk)).on('end', () => resolve({ path, status: res.statusCode, retryAfter: res.headers['retry-after'], body }));
        res.on('error', (error) => resolve({ path, status: res.statusCode, retryAfter: undefined, body: 'cut off: ' + error.code }));
      }).on('error', reject);
    });
    await ask('/graphql/ide/app-1.js', '*/*');
    const held = [];
    const takeEveryDescriptor = () => {
      try {
        for (;;) held.push(openSync('/dev/null', 'r'));
      } catch (error) {
        if (error.code !== 'EMFILE') throw error;
      }
    };
    // Twice: the first answer's file is closed on a later turn, which would leave its descriptor free.
    takeEveryDescriptor();
    await new Promise((resolve) => setTimeout(resolve, 200));
    takeEveryDescriptor();
    const answers = [await ask('/graphql', 'text/html'), await ask('/graphql/ide/app-1.js', '*/*')];
    held.forEach((fd) => closeSync(fd));
    rmSync(dir, { recursive: true, force: true });
    process.stdout.write(JSON.stringify(answers));
    process.exit(0);
  `;
  const { stdout } = await promisify(execFile)('sh', ['-c', 'ulimit -n 256 && exec "$0" --import tsx --input-type=module -e "$1"', process.execPath, script]);
  return JSON.parse(stdout) as Array<{ path: string; status: number; retryAfter: string | undefined; body: string }>;
}

test('with the process out of file descriptors, the page and its files are answered 503 to try again, not "not built" nor 404', { skip: process.platform === 'win32' && 'ulimit' }, async () => {
  const answers = await ideAnswersOutOfDescriptors();
  assert.deepEqual(
    answers.map(({ path, status, retryAfter, body }) => ({ path, status, retryAfter, body })),
    ['/graphql', '/graphql/ide/app-1.js'].map((path) => ({
      path,
      status: 503,
      retryAfter: '1',
      body: 'the gateway is out of file descriptors for now (its limit of open files, ulimit -n): try again',
    })),
  );
});
