import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { join } from 'node:path';
import type { Route, Worker } from 'playwright-core';
import { projectRoot } from '../../src/support/project-root.ts';
import { closeServer, forward, listenOnLoopback } from '../helpers/net.ts';
import { startStack } from '../helpers/stack.ts';
import { browserTest, foreignRequests, useIdeStack } from './browser.ts';
import { operationName, recordSentOperations, replaceText, sidebar } from './ide-page.ts';

/**
 * The IDE as a person uses it: open /graphql in Chromium, press run on the example query, read the answer in
 * the result pane. Everything must come from the gateway itself.
 */

const stack = useIdeStack();

browserTest('the IDE runs the example query against the gateway and shows the data', async (context, page) => {
  const foreign = foreignRequests(context, [stack.gateway.origin]);
  const pageErrors: string[] = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));

  await page.goto(stack.gateway.url);
  await page.locator('.graphiql-container').waitFor();
  // A main landmark and a heading for screen readers, which GraphiQL's own markup lacks; the heading takes no room.
  assert.equal(await page.getByRole('main').locator('.graphiql-container').count(), 1);
  // In the landmark, where landmark navigation lands: outside it, the page's one heading was content in no region.
  assert.equal(await page.getByRole('main').getByRole('heading', { level: 1 }).count(), 1, 'the heading is in the main landmark');
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
  assert.doesNotMatch(text, /requestId/, 'an answer without errors is shown as it came');

  if (process.env['UPDATE_SCREENSHOT'] === '1') {
    await page.screenshot({ path: join(projectRoot(), 'docs', 'ide.png') });
  }

  // An answer with errors is shown with the request id it was answered under, which its log lines carry. In a
  // window tall enough for the whole answer: Monaco renders only the lines in view.
  await page.setViewportSize({ width: 1280, height: 2000 });
  const answered = page.waitForResponse((response) => response.url() === stack.gateway.url && response.request().method() === 'POST');
  await replaceText(page, page.locator('.graphiql-query-editor'), '{ account(id: "0123456789abcdef01234567") { id } }');
  await page.locator('.graphiql-execute-button').click();
  const requestId = await (await answered).headerValue('x-request-id');
  assert.ok(requestId, 'the gateway answers with an X-Request-Id');
  await result.getByText('requestId').first().waitFor();
  const failed = (await result.innerText()).replace(/\s+/g, ' ');
  assert.ok(failed.includes(`"extensions": { "requestId": "${requestId}" }`), failed);

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

browserTest('with the gateway gone, a proxy’s error page, or a header fetch refuses, the result pane says what happened, not a stack trace', async (_context, page) => {
  // fetch's own TypeError ("Failed to fetch") reached GraphiQL, which showed it with the minified bundle's
  // stack: twenty lines of `at lTi (…/graphql/ide/app-….js:1150:79310)`.
  const doomed = await startStack({ emulator: { seed: 'demo' } });
  let closed = false;
  try {
    await page.goto(doomed.gateway.url);
    await page.locator('.graphiql-container').waitFor();
    await page.locator('.graphiql-execute-button').click();
    await page.locator('.graphiql-response').getByText('ada@example.com').first().waitFor();

    // A proxy in front of the gateway answering with its own HTML error page: what it said is shown, not a JSON
    // parse error, nor a bare status that leaves the person guessing which hop failed and why.
    await page.route(doomed.gateway.url, (route) =>
      route.fulfill({ status: 502, contentType: 'text/html', body: '<html><body><h1>502 Bad Gateway</h1><p>upstream unreachable</p></body></html>' }),
    );
    await page.locator('.graphiql-execute-button').click();
    const result = page.locator('.graphiql-response');
    await result.getByText('HTTP 502').first().waitFor();
    // Monaco wraps long lines: compared without whitespace.
    assert.match((await result.innerText()).replace(/\s+/g, ''), /upstreamunreachable/);
    await page.unroute(doomed.gateway.url);
    // A page whose first 500 UTF-16 units end inside an emoji: cut there, its first half was shown as `\ud83d`.
    await page.route(doomed.gateway.url, (route) => route.fulfill({ status: 503, contentType: 'text/html; charset=utf-8', body: `${'x'.repeat(499)}😀 and more` }));
    await page.locator('.graphiql-execute-button').click();
    await result.getByText('HTTP 503').first().waitFor();
    const cut = (await result.innerText()).replace(/\s+/g, '');
    assert.match(cut, /x{499}"/, 'the page is shown up to the character the cut would have split');
    assert.doesNotMatch(cut, /\\ud83d/i, 'no half of a surrogate pair is shown');
    await page.unroute(doomed.gateway.url);
    // JSON that is no GraphQL answer (neither data nor errors): a proxy's own error object is shown with its status,
    // which the raw object left out, and `null` as what it is (GraphiQL threw on it, and showed its TypeError with
    // the bundle's stack). A proxy's own rate limit says when to come back in its Retry-After only: shown with it.
    for (const [status, body, said, headers] of [
      [502, '{"message":"An invalid response was received from the upstream server"}', /HTTP502:\{"message":"Aninvalidresponse/, {}],
      [200, 'null', /HTTP200:null/, {}],
      [429, '', /HTTP429\(Retry-After:30\):TooManyRequests/, { 'retry-after': '30' }],
    ] as const) {
      await page.route(doomed.gateway.url, (route) => route.fulfill({ status, contentType: 'application/json', body, headers }));
      await page.locator('.graphiql-execute-button').click();
      await result.getByText(`HTTP ${status}`).first().waitFor();
      const shown = (await result.innerText()).replace(/\s+/g, '').replaceAll('\\"', '"');
      assert.match(shown, said, body);
      assert.doesNotMatch(shown, /"stack"|\.js:\d+/, body);
      await page.unroute(doomed.gateway.url);
    }

    // A token pasted with a typographic quote in it: no such header can be sent.
    await page.getByRole('button', { name: /Headers/ }).click();
    const headers = page.locator('.graphiql-editor-tool .graphiql-editor:not(.hidden)');
    await replaceText(page, headers, '{ "Authorization": "Bearer “abc”" }');
    await page.locator('.graphiql-execute-button').click();
    await result.getByText('Request not sent').first().waitFor();
    assert.doesNotMatch(await result.innerText(), /"stack"|\.js:\d+/);

    // Headers copied from a curl command or another client, Content-Type among them, as the editor takes in any
    // case: sent once. Added to the page's own, they were sent as `application/json, application/json`, which
    // the gateway refused with 415 "POST bodies must be application/json".
    await replaceText(page, headers, '{ "Content-Type": "application/json", "Accept": "application/json" }');
    const answered = page.waitForResponse((response) => operationName(response.request()) === 'AccountsWithSources');
    await page.locator('.graphiql-execute-button').click();
    assert.equal((await answered).status(), 200, 'the operation with the typed Content-Type is taken');
    await result.getByText('ada@example.com').first().waitFor();

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

browserTest('Ctrl-Enter or the stop button while an operation runs stops it: it is not sent again, and its answer, which never comes, is not shown', async (_context, page) => {
  // GraphiQL can stop only an operation its fetcher hands it as an observable: with a promise, its stop button
  // turned back into the run button while the request went on and its answer filled the result pane later, and
  // Ctrl-Enter, which the button offers as the way to stop, sent the operation a second time (a mutation: two writes).
  const held: Route[] = [];
  await page.route(stack.gateway.url, (route) => {
    if (operationName(route.request()) !== 'AccountsWithSources') return route.continue();
    held.push(route);
    return undefined;
  });
  const sent = await recordSentOperations(page);
  await page.goto(stack.gateway.url);
  await page.locator('.graphiql-doc-explorer').getByText('Query', { exact: true }).first().waitFor();
  const button = page.locator('.graphiql-execute-button');
  const result = page.locator('.graphiql-response');
  for (const stop of ['Ctrl-Enter', 'the stop button']) {
    const abandoned = page.waitForEvent('requestfailed', (request) => operationName(request) === 'AccountsWithSources');
    await button.click();
    await page.locator('.graphiql-execute-button[aria-label^="Stop query"]').waitFor();
    if (stop === 'Ctrl-Enter') {
      await page.locator('.graphiql-query-editor').click();
      await page.keyboard.press('ControlOrMeta+Enter');
    } else {
      await button.click();
    }
    assert.equal((await sent()).filter((name) => name === 'AccountsWithSources').length, stop === 'Ctrl-Enter' ? 1 : 2, `${stop} sends nothing`);
    // The browser gives the request up: its answer cannot reach the result pane.
    await abandoned;
    await page.locator('.graphiql-execute-button[aria-label^="Execute query"]').waitFor();
    assert.doesNotMatch(await result.innerText(), /ada@example\.com/, `${stop}: no answer shown`);
  }
  await page.unroute(stack.gateway.url);
  await Promise.all(held.map((route) => route.continue().catch(() => undefined)));
  // The IDE runs the next operation as ever.
  await button.click();
  await result.getByText('ada@example.com').first().waitFor();
});

browserTest('the docs panel opens at a first visit in a wide window, stays closed once closed, and leaves a narrow window to the editors, the result below them', async (_context, page) => {
  await page.goto(stack.gateway.url);
  await page.locator('.graphiql-container').waitFor();
  const docs = page.locator('.graphiql-doc-explorer');
  // Whether the panel is open, as the sidebar's button says from the page's first render on: the panel itself
  // shows only once the schema has come, after the checks below would have looked for it.
  const docsOpen = async () => {
    await sidebar(page).getByRole('button', { name: /History/ }).waitFor();
    return (await sidebar(page).getByRole('button', { name: /Hide Documentation Explorer/ }).count()) > 0;
  };
  // A reload, done once the schema has come and a run has ended after it: a panel opened then (at the first
  // render, or as the schema came) shows by the time the checks below look.
  const reloadUntilSchemaCame = async () => {
    const schemaCame = page.waitForResponse((response) => operationName(response.request()) === 'IdeSchema');
    await page.reload();
    await schemaCame;
    const answered = page.waitForResponse((response) => operationName(response.request()) === 'AccountsWithSources');
    await page.locator('.graphiql-execute-button').click();
    await answered;
    await page.locator('.graphiql-execute-button[aria-label^="Execute query"]').waitFor();
  };
  await docs.getByText('Query', { exact: true }).first().waitFor();
  // In a wide window, the result beside the editors.
  const panes = async () => ({ result: (await page.locator('.graphiql-response').boundingBox())!, editors: (await page.locator('.graphiql-editors').boundingBox())! });
  const wide = await panes();
  assert.ok(wide.result.x >= wide.editors.x + wide.editors.width, `the result pane is beside the editors: ${JSON.stringify(wide)}`);
  // Closed, it came back at every reload: GraphiQL stores a closed panel as none, which the page's default overrode.
  await page.getByRole('button', { name: /Documentation Explorer/i }).click();
  await docs.waitFor({ state: 'detached' });
  // And a reload at once, before GraphiQL stores its tabs (half a second after a change), found nothing stored
  // at all, a first visit again: what the page keeps of its own is all that is left here.
  await page.evaluate("Object.keys(localStorage).filter((key) => key !== 'graphiql:visited').forEach((key) => localStorage.removeItem(key))");
  await reloadUntilSchemaCame();
  assert.equal(await docsOpen(), false, 'the docs panel stays closed after a reload');

  // A first visit in a phone's width: the panel's 200 pixels pushed the editors and the run button out of the window.
  await page.evaluate('localStorage.clear()');
  await page.setViewportSize({ width: 400, height: 800 });
  await reloadUntilSchemaCame();
  assert.equal(await docsOpen(), false, 'no docs panel in a narrow window');
  const button = (await page.locator('.graphiql-execute-button').boundingBox())!;
  assert.ok(button.x + button.width <= 400, `the run button is in the window (its right edge at ${button.x + button.width})`);
  assert.equal(await page.evaluate('document.documentElement.scrollWidth'), 400, 'nothing wider than the window');
  assert.equal(await docs.count(), 0);
  // The result below the editors, as wide as they are: beside them, it had the ~60 px they left it, a character a line.
  const narrow = await panes();
  assert.ok(
    narrow.result.y >= narrow.editors.y + narrow.editors.height && narrow.result.width >= narrow.editors.width,
    `the result pane is below the editors, as wide as they are: ${JSON.stringify(narrow)}`,
  );
});

browserTest('the editors’ language services run in their workers: an unknown field is marked, a field of the schema is offered', async (_context, page) => {
  const violations: string[] = [];
  page.on('console', (message) => {
    if (/Content Security Policy/i.test(message.text())) violations.push(message.text());
  });
  const workers: Worker[] = [];
  page.on('worker', (worker) => {
    workers.push(worker);
    // The editor may end a worker and start another (one did, under load, as the test asked it): only a running one is asked below.
    worker.once('close', () => workers.splice(workers.indexOf(worker), 1));
  });
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
  const graphqlWorker = workers.findLast((worker) => /\/graphql\/ide\/graphql\.worker-[\w-]+\.js$/.test(new URL(worker.url()).pathname));
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

browserTest('a language worker whose file the gateway no longer has (rebuilt since the page loaded) is said, with a way to reload', async (_context, page) => {
  // What a page open across a rebuild meets: the editors start a worker again after two idle minutes, by the name of
  // the build the page came from, which the gateway no longer serves. Here the worker's file is gone from the start.
  const gone = '**/graphql/ide/graphql.worker-*';
  await page.route(gone, (route) => route.fulfill({ status: 404, contentType: 'text/plain; charset=utf-8', body: 'no such IDE asset' }));
  await page.goto(stack.gateway.url);
  const notice = page.getByRole('alert').filter({ hasText: /checks and completion stopped/ });
  await notice.waitFor();
  assert.match(await notice.innerText(), /\(graphql\/ide\/graphql\.worker-\w+\.js\) could not be loaded from the gateway, most likely rebuilt or redeployed/);
  // Said once, however many workers fail.
  assert.equal(await notice.count(), 1);

  // The gateway has it again (as the reloaded page names the new build's): its Reload button gets the page back whole.
  await page.unroute(gone);
  await notice.getByRole('button', { name: 'Reload' }).click();
  const editor = page.locator('.graphiql-query-editor');
  await page.locator('.graphiql-doc-explorer').getByText('Query', { exact: true }).first().waitFor();
  await replaceText(page, editor, '{ noSuchField }');
  await editor.locator('.squiggly-error').first().waitFor();
  assert.equal(await notice.count(), 0, 'no notice once the workers load');
});

// The notice is fixed at the window's foot, over GraphiQL: it covered the sidebar's short keys and settings buttons
// at every width, and in a window of 640 × 400 (1280 × 800 at 200% zoom) the Variables and Headers buttons and the
// headers editor, where a token is typed. Operations still run, but what it covered stayed out of reach (hidden
// under it when focused: WCAG 2.4.11) unless the page was reloaded, which loses the tabs where storage is refused.
browserTest('the notice of a language worker not loaded can be dismissed from the keyboard, giving back what it covered', async (_context, page) => {
  await page.setViewportSize({ width: 640, height: 400 });
  await page.route('**/graphql/ide/graphql.worker-*', (route) => route.fulfill({ status: 404, contentType: 'text/plain; charset=utf-8', body: 'no such IDE asset' }));
  await page.goto(stack.gateway.url);
  const notice = page.getByRole('alert').filter({ hasText: /checks and completion stopped/ });
  await notice.waitFor();
  const settings = sidebar(page).getByRole('button', { name: 'Open settings dialog' });
  // Whether a pointer (and an eye) reaches `control` where it is: the element at its centre is it, not the notice.
  const reachable = (control: typeof settings) =>
    control.evaluate((element) => {
      const box = element.getBoundingClientRect();
      const at = (globalThis as unknown as { document: { elementFromPoint(x: number, y: number): unknown } }).document.elementFromPoint(
        box.left + box.width / 2,
        box.top + box.height / 2,
      );
      return (element as { contains(other: unknown): boolean }).contains(at);
    });
  assert.equal(await reachable(settings), false, 'the notice covers the settings button (else this test tests nothing)');

  const dismiss = notice.getByRole('button', { name: 'Dismiss' });
  assert.equal(await dismiss.count(), 1, 'the notice has a Dismiss button');
  await dismiss.focus();
  await page.keyboard.press('Enter');
  assert.equal(await notice.count(), 0, 'the notice is gone');
  assert.equal(await reachable(settings), true, 'the settings button is in reach again');
  // Removed with the focus on it, the notice would leave the focus nowhere: it goes to the run button, as operations still run.
  assert.equal(await page.locator('.graphiql-execute-button:focus').count(), 1, 'the run button has the focus');
});
