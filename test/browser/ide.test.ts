import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { after, before } from 'node:test';
import type { Locator, Page, Request, Response, Worker } from 'playwright-core';
import { projectRoot } from '../../src/support/project-root.ts';
import { closeServer, forward, listenOnLoopback } from '../helpers/net.ts';
import { startStack, type Stack } from '../helpers/stack.ts';
import { hsToken, SECRET } from '../auth/helpers.ts';
import { browserTest, ensureIdeBuilt, foreignRequests, skipReason } from './browser.ts';

/**
 * The IDE as a person uses it: open /graphql in Chromium, press run on the example query, read the answer in
 * the result pane. Everything must come from the gateway itself.
 */

let stack: Stack;

/**
 * Replaces the headers editor's placeholder with `token`, as a person pasting it would, and runs the example
 * query; or `query`, typed in its place, which names its operation `operation`. Returns the gateway's answer
 * once it came and `answer` shows in the result pane: waiting for this run's answer first, so that the same
 * text left there by an earlier run is not taken for it.
 */
async function runWithToken(
  page: Page,
  token: string,
  { query, operation = 'AccountsWithSources', answer = 'ada@example.com' }: { query?: string; operation?: string; answer?: string } = {},
): Promise<Response> {
  if (query !== undefined) await replaceText(page, page.locator('.graphiql-query-editor'), query);
  const headers = page.locator('.graphiql-editor-tool .graphiql-editor:not(.hidden)');
  // The editor holds the page's placeholder, or the token of an earlier run.
  await headers.getByText(/Bearer/).first().waitFor();
  await replaceText(page, headers, JSON.stringify({ Authorization: `Bearer ${token}` }));
  const answered = page.waitForResponse((response) => operationName(response.request()) === operation);
  await page.locator('.graphiql-execute-button').click();
  const response = await answered;
  await page.locator('.graphiql-response').getByText(answer).first().waitFor();
  return response;
}

/** The name of the operation a request of the page sends (none for a GET, or a body without one). */
const operationName = (request: Request): string | undefined => (request.postDataJSON() as { operationName?: string } | null)?.operationName;

/** Replaces the whole text of one of the page's Monaco editors (`editor`) with `text`, as a person pasting it would. */
async function replaceText(page: Page, editor: Locator, text: string): Promise<void> {
  await editor.click();
  await page.keyboard.press('ControlOrMeta+A');
  if (text === '') return page.keyboard.press('Delete');
  await page.keyboard.insertText(text);
  // Monaco closes quotes and braces as they are typed: drop what it added after the cursor.
  await page.keyboard.press('Shift+ControlOrMeta+End');
  await page.keyboard.press('Delete');
}

/** Where `recordSentOperations` keeps the operation names, in the page (functions run there see it). */
type Recorded = { sentOperations: (string | null)[] };

/**
 * From the next page load on, the name of every operation the page sends, recorded in the page as its
 * `fetch` is called: unlike the browser's reports of requests, which come in later, what it holds once the
 * page has shown something is all the page had sent by then.
 */
async function recordSentOperations(page: Page): Promise<() => Promise<(string | null)[]>> {
  await page.addInitScript(() => {
    const window = globalThis as unknown as Recorded & { fetch: (input: unknown, init?: { body?: unknown }) => Promise<unknown> };
    const send = window.fetch;
    window.sentOperations = [];
    window.fetch = (input, init) => {
      window.sentOperations.push((JSON.parse(String(init?.body ?? '{}')) as { operationName?: string }).operationName ?? null);
      return send(input, init);
    };
  });
  return () => page.evaluate(() => (globalThis as unknown as Recorded).sentOperations);
}

before(async () => {
  if (skipReason) return;
  ensureIdeBuilt();
  stack = await startStack({ emulator: { seed: 'demo' } });
});

after(async () => {
  await stack?.close();
});

browserTest('the IDE runs the example query against the gateway and shows the data', async (context, page) => {
  const foreign = foreignRequests(context, [stack.gateway.origin]);
  const pageErrors: string[] = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));

  await page.goto(stack.gateway.url);
  await page.locator('.graphiql-container').waitFor();
  // A main landmark and a heading for screen readers, which GraphiQL's own markup lacks; the heading takes no room.
  assert.equal(await page.getByRole('main').locator('.graphiql-container').count(), 1);
  const heading = page.getByRole('heading', { level: 1 });
  assert.equal(await heading.textContent(), 'GraphQL IDE of the Context.IO GraphQL gateway');
  const box = await heading.boundingBox();
  assert.ok(box !== null && box.width <= 1 && box.height <= 1, `the heading takes no room on screen: ${JSON.stringify(box)}`);
  // The example query is there, and the docs explorer has loaded the schema by introspection.
  await page.locator('.graphiql-query-editor').getByText('AccountsWithSources').waitFor();
  await page.locator('.graphiql-doc-explorer').getByText('Query', { exact: true }).first().waitFor();
  // This gateway runs without authentication: the example says so, and the headers editor opens empty.
  await page.locator('.graphiql-query-editor').getByText('No token: auth is off here.').waitFor();
  await page.locator('.graphiql-editor-tool').waitFor();
  assert.doesNotMatch(await page.locator('.graphiql-editor-tool').innerText(), /Authorization/);

  await page.locator('.graphiql-execute-button').click();
  const result = page.locator('.graphiql-response');
  await result.getByText('ada@example.com').first().waitFor();
  // Monaco renders only the visible lines, and wraps long ones: compare whitespace-insensitively, and only
  // what is near the top of the result.
  const text = (await result.innerText()).replace(/\s+/g, ' ');
  assert.match(text, /"data": \{ "accounts": \{ "nodes": \[/);
  assert.match(text, /"emailAddresses": \[ "ada@example.com" \]/);
  assert.match(text, /"sources": \[/);
  assert.doesNotMatch(text, /"errors"/);

  if (process.env['UPDATE_SCREENSHOT'] === '1') {
    await page.screenshot({ path: join(projectRoot(), 'docs', 'ide.png') });
  }

  assert.deepEqual(foreign, [], 'the IDE must load nothing from another origin');
  assert.deepEqual(pageErrors, []);
});

browserTest('the IDE works behind a proxy that mounts the gateway under a prefix (/api/graphql)', async (context, page) => {
  // What a deployment behind an ingress does: /api/graphql… reaches the gateway's /graphql…. The page once named
  // its scripts and its endpoint by absolute paths, which reached the proxy's own /graphql instead.
  const proxy = createServer((req, res) => {
    if (!req.url?.startsWith('/api/')) return void res.writeHead(404).end();
    forward(req, res, `${stack.gateway.origin}${req.url.slice('/api'.length)}`);
  });
  const port = await listenOnLoopback(proxy);
  try {
    const origin = `http://127.0.0.1:${port}`;
    const foreign = foreignRequests(context, [origin]);
    const pageErrors: string[] = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));
    await page.goto(`${origin}/api/graphql`);
    await page.locator('.graphiql-container').waitFor();
    await page.locator('.graphiql-execute-button').click();
    await page.locator('.graphiql-response').getByText('ada@example.com').first().waitFor();
    assert.deepEqual(foreign, []);
    assert.deepEqual(pageErrors, []);
  } finally {
    await closeServer(proxy);
  }
});

browserTest('with auth on, the token typed into the headers editor is sent but never stored in the browser', async (_context, page) => {
  const authed = await startStack({ emulator: { seed: 'demo' }, gateway: { auth: { jwtSecret: SECRET } } });
  try {
    const token = await hsToken({ scope: 'contextio:admin' });
    await page.goto(authed.gateway.url);
    await page.locator('.graphiql-container').waitFor();
    await page.locator('.graphiql-execute-button').waitFor();
    // A first visit, in a wide window, but introspection is off: the docs panel could only say it has no schema.
    assert.equal(await page.locator('.graphiql-doc-explorer').count(), 0, 'no docs panel with introspection off');
    // A token an earlier version of the page let GraphiQL store is gone after the next visit.
    await page.evaluate(
      `localStorage.setItem('graphiql:queries', JSON.stringify({ queries: [{ query: '{ __typename }', headers: '{"Authorization":"Bearer 0ld.t0ken.value"}' }] }));` +
        `localStorage.setItem('graphiql:headers', '{"Authorization":"Bearer 0ld.t0ken.value"}')`,
    );
    await page.reload();
    await page.locator('.graphiql-container').waitFor();
    const cleaned = (await page.evaluate('JSON.stringify({ ...localStorage })')) as string;
    assert.match(cleaned, /__typename/);
    assert.doesNotMatch(cleaned, /0ld\.t0ken/);

    // Introspection is off here: the schema is never asked for (its refusal once took the result pane over
    // the first operation's answer), neither as the page opens nor after an operation has run.
    const sentOperations = await recordSentOperations(page);
    await page.reload();
    await page.locator('.graphiql-container').waitFor();
    await runWithToken(page, token);
    const shown = await page.locator('.graphiql-response').innerText();
    assert.match(shown, /ada@example\.com/);
    assert.doesNotMatch(shown, /Introspection is off/);
    // Once more with the same headers, until its answer is taken in (sent, then the run button back from Stop
    // to Execute: GraphiQL's store renders at once, and React runs the effects of such a render with it). What
    // the page does after an answer (the schema asked for then, if ever) it has done by now for the first.
    await page.locator('.graphiql-execute-button').click();
    await page.waitForFunction(() => (globalThis as unknown as Recorded).sentOperations.filter((name) => name === 'AccountsWithSources').length === 2);
    await page.locator('.graphiql-execute-button[aria-label^="Execute query"]').waitFor();
    assert.deepEqual(await sentOperations(), ['AccountsWithSources', 'AccountsWithSources']);

    // GraphiQL keeps tabs and a query history in localStorage, headers included unless kept out.
    const stored = (await page.evaluate('JSON.stringify({ ...localStorage })')) as string;
    assert.match(stored, /AccountsWithSources/, 'the history is still kept');
    assert.doesNotMatch(stored, new RegExp(token.split('.')[2]!), 'no part of the token in localStorage');
    assert.doesNotMatch(stored, /Bearer/);
  } finally {
    await authed.close();
  }
});

/**
 * The IDE of a gateway with auth and introspection on: `run(token)` (an operation `name`d so), after which the
 * docs must load without anyone pressing Shift-Ctrl-R; and the schema not asked for before, as the page opened
 * without a token: its refusal, a 401, filled the result pane.
 */
async function docsLoadAfter(page: Page, name: string, run: (token: string) => Promise<unknown>): Promise<void> {
  const authed = await startStack({ emulator: { seed: 'demo' }, gateway: { auth: { jwtSecret: SECRET }, introspection: true } });
  try {
    const token = await hsToken({ scope: 'contextio:admin' });
    const sentOperations = await recordSentOperations(page);
    await page.goto(authed.gateway.url);
    await page.locator('.graphiql-container').waitFor();
    await sidebar(page).getByRole('button', { name: /History/ }).waitFor();
    // A first visit in a wide window, but the schema waits for a token: the docs panel, open, could only say
    // in red that there is no schema. It stays closed; the example's hint says where the docs will be.
    assert.equal(await page.locator('.graphiql-doc-explorer').count(), 0, 'no docs panel before a token');
    // A wrong token, refused (401), is not taken: the schema is not asked for with it.
    await runWithToken(page, 'not.a.token', { answer: 'The bearer token is not a well-formed JWT' });
    await run(token);
    await openDocs(page);
    await page.locator('.graphiql-doc-explorer').getByText('Query', { exact: true }).first().waitFor();
    assert.deepEqual(await sentOperations(), ['AccountsWithSources', name, 'IdeSchema']);
  } finally {
    await authed.close();
  }
}

browserTest('with auth and introspection on, the schema is asked for once an operation has run with a token the gateway took', async (_context, page) => {
  await docsLoadAfter(page, 'AccountsWithSources', (token) => runWithToken(page, token));
});

browserTest('with auth and introspection on, the docs load after an operation of a person’s named IntrospectionQuery too', async (_context, page) => {
  // graphql-js's introspection query has this name, and people run it. Taken for the IDE's own schema
  // request, its answer said the schema needed no token, and the docs were never asked for again.
  await docsLoadAfter(page, 'IntrospectionQuery', (token) => runWithToken(page, token, { query: 'query IntrospectionQuery { __schema { queryType { name } } }', operation: 'IntrospectionQuery', answer: '"queryType"' }));
});

browserTest('with auth and introspection on, a schema request refused for want of a token is asked again after an operation with other headers only; one failing otherwise is not', async (_context, page) => {
  const authed = await startStack({ emulator: { seed: 'demo' }, gateway: { auth: { jwtSecret: SECRET }, introspection: true } });
  try {
    const token = await hsToken({ scope: 'contextio:admin' });
    const another = await hsToken({ scope: 'contextio:admin', sub: 'another' });
    // The page's schema requests are answered here instead of by the gateway: with `token`, as if it expired
    // between the operation and the schema request (401); with any token, once `failing` is set, as by a
    // gateway failing (503). GraphiQL sends each schema request twice when the first gets no data.
    let failing = false;
    await page.route(authed.gateway.url, async (route) => {
      const request = route.request();
      if (operationName(request) !== 'IdeSchema') return route.continue();
      const expired = request.headers()['authorization'] === `Bearer ${token}`;
      if (!failing && !expired) return route.continue();
      const [status, message] = failing ? [503, 'The gateway is failing'] : [401, 'The token expired meanwhile'];
      return route.fulfill({ status, contentType: 'application/json', body: JSON.stringify({ errors: [{ message }] }) });
    });
    const sentOperations = await recordSentOperations(page);
    /** Runs the operation again with the same headers, until its answer is taken in (see the test with auth on, above). */
    const runAgain = async (runs: number) => {
      await page.locator('.graphiql-execute-button').click();
      await page.waitForFunction((n) => (globalThis as unknown as Recorded).sentOperations.filter((name) => name === 'AccountsWithSources').length === n, runs);
      await page.locator('.graphiql-execute-button[aria-label^="Execute query"]').waitFor();
    };

    // The operation's answer may show only for a moment: the schema request it leads to is refused right
    // after, and GraphiQL puts that refusal in the same pane (on a busy machine both land in one render). So
    // the answer is read from the network, the refusal from the pane.
    const runRefusedSchema = async (withToken: string, refusal: string) => {
      const answered = await runWithToken(page, withToken, { answer: refusal });
      assert.match(await answered.text(), /ada@example\.com/);
    };

    await page.goto(authed.gateway.url);
    await page.locator('.graphiql-container').waitFor();
    await runRefusedSchema(token, 'The token expired meanwhile');
    // The same headers again: a token refused stays refused, so the schema is not asked for with it.
    await runAgain(2);
    await runWithToken(page, another);
    await openDocs(page);
    await page.locator('.graphiql-doc-explorer').getByText('Query', { exact: true }).first().waitFor();
    const schema = ['IdeSchema', 'IdeSchema'];
    assert.deepEqual(await sentOperations(), ['AccountsWithSources', ...schema, 'AccountsWithSources', 'AccountsWithSources', 'IdeSchema']);

    // Refused for another reason than a token, the schema is not asked for again by other headers either.
    failing = true;
    await page.reload();
    await page.locator('.graphiql-container').waitFor();
    await runRefusedSchema(token, 'The gateway is failing');
    await runWithToken(page, another);
    await runAgain(3);
    assert.deepEqual(await sentOperations(), ['AccountsWithSources', ...schema, 'AccountsWithSources', 'AccountsWithSources']);
  } finally {
    await authed.close();
  }
});

/** The buttons down the IDE's left edge, GraphiQL's sidebar: the panels', then re-fetch, short keys, settings. */
const sidebar = (page: Page) => page.locator('.graphiql-sidebar');
/** GraphiQL's sidebar button that asks for the schema again; getByRole finds it only while shown. */
const refetchButton = (page: Page) => sidebar(page).getByRole('button', { name: /Re-fetch GraphQL schema/ });
/** Opens the docs panel by its sidebar button, as a person would where it does not open by itself. */
const openDocs = (page: Page) => sidebar(page).getByRole('button', { name: /Show Documentation Explorer/ }).click();

/** Whether the sidebar's settings button is still at its foot, where the re-fetch button, when shown, holds them. */
async function settingsAtSidebarFoot(page: Page): Promise<boolean> {
  const settings = (await sidebar(page).getByRole('button', { name: /settings/ }).boundingBox())!;
  const bar = (await sidebar(page).boundingBox())!;
  return settings.y + settings.height > bar.y + bar.height - 100;
}

browserTest('with introspection off, the IDE offers no docs panel and no schema re-fetch, and its example says where the schema is', async (_context, page) => {
  // GraphiQL's docs button opened a panel saying "No GraphQL schema available" in red, and its re-fetch button
  // did nothing: neither could ever work against this gateway.
  const closed = await startStack({ emulator: { seed: 'demo' }, gateway: { introspection: false } });
  try {
    const sentOperations = await recordSentOperations(page);
    await page.goto(closed.gateway.url);
    await page.locator('.graphiql-container').waitFor();
    await page.locator('.graphiql-query-editor').getByText('Schema: schema.graphql in the gateway’s source.').waitFor();
    await sidebar(page).getByRole('button', { name: /History/ }).waitFor();
    assert.equal(await sidebar(page).getByRole('button', { name: /Documentation Explorer/ }).count(), 0, 'no docs button');
    assert.equal(await page.locator('.graphiql-doc-explorer').count(), 0, 'no docs panel');
    assert.equal(await refetchButton(page).count(), 0, 'no re-fetch button');
    assert.ok(await settingsAtSidebarFoot(page), 'the short keys and settings buttons stay at the sidebar’s foot');
    // The queries still run, and nothing asks for the schema.
    await page.locator('.graphiql-execute-button').click();
    await page.locator('.graphiql-response').getByText('ada@example.com').first().waitFor();
    await page.locator('.graphiql-execute-button[aria-label^="Execute query"]').waitFor();
    assert.deepEqual(await sentOperations(), ['AccountsWithSources']);
  } finally {
    await closed.close();
  }
});

browserTest('with auth and introspection on, the schema re-fetch is offered once a token was taken, and asks with the headers then in the editor', async (_context, page) => {
  // Before a token was taken the page does not ask for the schema (`schema={null}`), and GraphiQL's re-fetch
  // button, shown all the same, did nothing when pressed.
  const authed = await startStack({ emulator: { seed: 'demo' }, gateway: { auth: { jwtSecret: SECRET }, introspection: true } });
  try {
    const token = await hsToken({ scope: 'contextio:admin' });
    const another = await hsToken({ scope: 'contextio:admin', sub: 'another' });
    await page.goto(authed.gateway.url);
    await page.locator('.graphiql-container').waitFor();
    await sidebar(page).getByRole('button', { name: /History/ }).waitFor();
    assert.equal(await refetchButton(page).count(), 0, 'no re-fetch button before a token was taken');
    assert.ok(await settingsAtSidebarFoot(page), 'the short keys and settings buttons stay at the sidebar’s foot');
    await runWithToken(page, 'not.a.token', { answer: 'The bearer token is not a well-formed JWT' });
    await page.locator('.graphiql-execute-button[aria-label^="Execute query"]').waitFor();
    assert.equal(await refetchButton(page).count(), 0, 'nor after a token the gateway refused');

    await runWithToken(page, token);
    await openDocs(page);
    await page.locator('.graphiql-doc-explorer').getByText('Query', { exact: true }).first().waitFor();
    await refetchButton(page).waitFor();
    assert.ok(await settingsAtSidebarFoot(page), 'the short keys and settings buttons stay at the sidebar’s foot with the docs open');
    // Pressed, it asks for the schema with the headers now in the editor.
    const headers = page.locator('.graphiql-editor-tool .graphiql-editor:not(.hidden)');
    await replaceText(page, headers, JSON.stringify({ Authorization: `Bearer ${another}` }));
    const asked = page.waitForRequest((request) => operationName(request) === 'IdeSchema');
    await refetchButton(page).click();
    const request = await asked;
    assert.equal(request.headers()['authorization'], `Bearer ${another}`);
    assert.equal((await request.response())?.status(), 200);
  } finally {
    await authed.close();
  }
});

browserTest('a schema request that gets no data is tried once more under the same name, which its document then defines', async (_context, page) => {
  // GraphiQL tries again (without subscriptionType, for older servers) when its schema request gets no data,
  // with the operation name it was given but graphql-js's document, named IntrospectionQuery: the gateway
  // answered "Unknown operation named IdeSchema", and the docs stayed out after a moment's failure.
  const documents: string[] = [];
  let refused = false;
  await page.route(stack.gateway.url, async (route) => {
    const body = route.request().postDataJSON() as { operationName?: string; query?: string } | null;
    if (body?.operationName !== 'IdeSchema') return route.continue();
    documents.push(/^\s*query\s+(\w+)/.exec(body.query ?? '')?.[1] ?? '');
    if (refused) return route.continue();
    refused = true;
    return route.fulfill({ status: 503, contentType: 'application/json', body: JSON.stringify({ errors: [{ message: 'The gateway is starting' }] }) });
  });
  await page.goto(stack.gateway.url);
  await page.locator('.graphiql-doc-explorer').getByText('Query', { exact: true }).first().waitFor();
  assert.deepEqual(documents, ['IdeSchema', 'IdeSchema']);
});

browserTest('variables typed into the IDE come back after a reload as they were typed, in the same tab', async (_context, page) => {
  await page.goto(stack.gateway.url);
  await page.locator('.graphiql-container').waitFor();
  await replaceText(page, page.locator('.graphiql-query-editor'), 'query Two($first: Int) { accounts(first: $first) { nodes { id } } }');
  await page.getByRole('button', { name: /Variables/ }).click();
  await replaceText(page, page.locator('.graphiql-editor-tool .graphiql-editor:not(.hidden)'), '{ "first": 2 }');
  // GraphiQL stores the editor's text, and the tab holding it, a while after the last key.
  await page.waitForFunction(() => {
    const { localStorage } = globalThis as unknown as { localStorage: { getItem(key: string): string | null } };
    const tabs = (JSON.parse(localStorage.getItem('graphiql:tabState') ?? '{}') as { tabs?: Array<{ variables: string | null }> }).tabs;
    return localStorage.getItem('graphiql:variables') !== null && tabs?.[0]?.variables === '{ "first": 2 }';
  });

  await page.reload();
  await page.locator('.graphiql-container').waitFor();
  await page.locator('.graphiql-query-editor').getByText('Two').waitFor();
  // Rewritten as `{"first":2}` by the storage that keeps headers out, the variables no longer matched the tab
  // that held them: GraphiQL opened a second tab with the rewritten text at the next visit.
  assert.equal(await page.evaluate(`localStorage.getItem('graphiql:variables')`), '{ "first": 2 }');
  await page.getByRole('button', { name: /Variables/ }).click();
  const variables = (await page.locator('.graphiql-editor-tool .graphiql-editor:not(.hidden)').innerText()).replace(/\s+/g, ' ');
  assert.match(variables, /\{ "first": 2 \}/);
  assert.ok((await page.locator('.graphiql-tab').count()) <= 1, 'no second tab for the same query and variables');
});

browserTest('with site data blocked for the gateway (localStorage refused), the IDE still opens and runs the example', async (_context, page) => {
  // What Chromium does when a person blocks site data ("cookies and site data") for the origin: reading
  // `window.localStorage` throws. The page read it as its script loaded, and showed nothing at all.
  await page.addInitScript(() => {
    Object.defineProperty(globalThis, 'localStorage', {
      configurable: true,
      get() {
        throw new DOMException("Failed to read the 'localStorage' property from 'Window': Access is denied for this document.", 'SecurityError');
      },
    });
  });
  const pageErrors: string[] = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));
  await page.goto(stack.gateway.url);
  await page.locator('.graphiql-execute-button').waitFor();
  await page.locator('.graphiql-execute-button').click();
  await page.locator('.graphiql-response').getByText('ada@example.com').first().waitFor();
  assert.deepEqual(pageErrors, []);
});

browserTest('with the storage full (every localStorage write refused), the IDE still opens, runs the example and keeps no token', async (_context, page) => {
  // What a browser does once the origin's localStorage is full (other pages of the gateway's origin filled it),
  // or, in some private windows, for every write: setItem throws QuotaExceededError. The page wrote as its
  // script loaded (marking the first visit, cleaning stored headers), and showed nothing at all.
  await page.goto(stack.gateway.url);
  await page.locator('.graphiql-container').waitFor();
  await page.evaluate(
    `localStorage.clear();` +
      `localStorage.setItem('graphiql:queries', JSON.stringify({ queries: [{ query: '{ __typename }', headers: '{"Authorization":"Bearer 0ld.t0ken.value"}' }] }));` +
      `localStorage.setItem('graphiql:query', '{ __typename }')`,
  );
  await page.addInitScript(() => {
    (globalThis as unknown as { Storage: { prototype: { setItem: () => void } } }).Storage.prototype.setItem = () => {
      throw new DOMException("Failed to execute 'setItem' on 'Storage': Setting the value of 'graphiql:visited' exceeded the quota.", 'QuotaExceededError');
    };
  });
  const pageErrors: string[] = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));
  await page.reload();
  await page.locator('.graphiql-execute-button').waitFor();
  assert.deepEqual(pageErrors, []);
  // What could not be written back without its headers is gone rather than kept with the token in it; the rest stays.
  const stored = (await page.evaluate('JSON.stringify({ ...localStorage })')) as string;
  assert.doesNotMatch(stored, /0ld\.t0ken/);
  assert.equal(await page.evaluate(`localStorage.getItem('graphiql:query')`), '{ __typename }');
  await page.locator('.graphiql-execute-button').click();
  await page.locator('.graphiql-response').getByText('"__typename"').first().waitFor();
  assert.deepEqual(pageErrors, []);
});

browserTest('with the gateway gone, or a header fetch refuses, the result pane says what happened, not a stack trace', async (_context, page) => {
  // fetch's own TypeError ("Failed to fetch") reached GraphiQL, which showed it with the minified bundle's
  // stack: twenty lines of `at lTi (…/graphql/ide/app-….js:1150:79310)`.
  const doomed = await startStack({ emulator: { seed: 'demo' } });
  let closed = false;
  try {
    await page.goto(doomed.gateway.url);
    await page.locator('.graphiql-container').waitFor();
    await page.locator('.graphiql-execute-button').click();
    await page.locator('.graphiql-response').getByText('ada@example.com').first().waitFor();

    // A token pasted with a typographic quote in it: no such header can be sent.
    await page.getByRole('button', { name: /Headers/ }).click();
    const headers = page.locator('.graphiql-editor-tool .graphiql-editor:not(.hidden)');
    await replaceText(page, headers, '{ "Authorization": "Bearer “abc”" }');
    await page.locator('.graphiql-execute-button').click();
    const result = page.locator('.graphiql-response');
    await result.getByText('Request not sent').first().waitFor();
    assert.doesNotMatch(await result.innerText(), /"stack"|\.js:\d+/);

    await replaceText(page, headers, '');
    await doomed.close();
    closed = true;
    await page.locator('.graphiql-execute-button').click();
    await result.getByText('No answer from the gateway').first().waitFor();
    const shown = (await result.innerText()).replace(/\s+/g, '');
    assert.ok(shown.includes(doomed.gateway.url.replace(/\s+/g, '')), 'the message names the endpoint it could not reach');
    assert.doesNotMatch(shown, /"stack"|\.js:\d+/);
  } finally {
    if (!closed) await doomed.close();
  }
});

browserTest('the docs panel opens at a first visit in a wide window, stays closed once closed, and leaves a narrow window to the editors', async (_context, page) => {
  await page.goto(stack.gateway.url);
  await page.locator('.graphiql-container').waitFor();
  const docs = page.locator('.graphiql-doc-explorer');
  await docs.getByText('Query', { exact: true }).first().waitFor();
  // Closed, it came back at every reload: GraphiQL stores a closed panel as none, which the page's default overrode.
  await page.getByRole('button', { name: /Documentation Explorer/i }).click();
  await docs.waitFor({ state: 'detached' });
  // And a reload at once, before GraphiQL stores its tabs (half a second after a change), found nothing stored
  // at all, a first visit again: what the page keeps of its own is all that is left here.
  await page.evaluate("Object.keys(localStorage).filter((key) => key !== 'graphiql:visited').forEach((key) => localStorage.removeItem(key))");
  await page.reload();
  await page.locator('.graphiql-query-editor').getByText('AccountsWithSources').waitFor();
  await page.locator('.graphiql-execute-button').waitFor();
  assert.equal(await docs.count(), 0, 'the docs panel stays closed after a reload');

  // A first visit in a phone's width: the panel's 200 pixels pushed the editors and the run button out of the window.
  await page.evaluate('localStorage.clear()');
  await page.setViewportSize({ width: 400, height: 800 });
  await page.reload();
  await page.locator('.graphiql-query-editor').getByText('AccountsWithSources').waitFor();
  const button = (await page.locator('.graphiql-execute-button').boundingBox())!;
  assert.ok(button.x + button.width <= 400, `the run button is in the window (its right edge at ${button.x + button.width})`);
  assert.equal(await page.evaluate('document.documentElement.scrollWidth'), 400, 'nothing wider than the window');
  assert.equal(await docs.count(), 0);
});

browserTest('the editors’ language services run in their workers: an unknown field is marked, a field of the schema is offered', async (_context, page) => {
  const violations: string[] = [];
  page.on('console', (message) => {
    if (/Content Security Policy/i.test(message.text())) violations.push(message.text());
  });
  const workers: Worker[] = [];
  page.on('worker', (worker) => workers.push(worker));
  await page.goto(stack.gateway.url);
  await page.locator('.graphiql-doc-explorer').getByText('Query', { exact: true }).first().waitFor();
  const editor = page.locator('.graphiql-query-editor');
  // Validation against the schema is the GraphQL worker's: a field the schema lacks gets an error marker.
  await replaceText(page, editor, '{ noSuchField }');
  await editor.locator('.squiggly-error').first().waitFor();
  // Completion too: the schema's query fields offered as a person types.
  await replaceText(page, editor, '{ acc');
  await page.keyboard.press('Control+Space');
  await page.locator('.suggest-widget').getByText('accounts', { exact: true }).first().waitFor();
  const graphqlWorker = workers.find((worker) => /\/graphql\/ide\/graphql\.worker-[\w-]+\.js$/.test(new URL(worker.url()).pathname));
  assert.ok(graphqlWorker, `the GraphQL worker started (${workers.map((worker) => worker.url()).join(', ')})`);
  assert.deepEqual(violations, []);
  // A worker runs under its own script's policy, not the page's: this one may fetch nothing, not even from the
  // gateway (what a script injected into it could otherwise send anywhere).
  const fetched = await graphqlWorker.evaluate(() => fetch('/healthz').then(
    (response) => `fetched: ${response.status}`,
    (error: unknown) => `refused: ${String(error)}`,
  ));
  assert.match(fetched, /^refused/);
});
