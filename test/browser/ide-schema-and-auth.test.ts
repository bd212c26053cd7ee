import assert from 'node:assert/strict';
import { before } from 'node:test';
import type { Page } from 'playwright-core';
import { startStack } from '../helpers/stack.ts';
import { hsToken, SECRET } from '../auth/helpers.ts';
import { browserTest, ensureIdeBuilt, skipReason } from './browser.ts';
import { openDocs, operationName, recordSentOperations, refetchButton, replaceText, runWithToken, settingsAtSidebarFoot, sidebar, type Recorded } from './ide-page.ts';

/**
 * The IDE of a gateway that asks for a token, or keeps its schema to itself (introspection off), as a person
 * uses it in Chromium: a token typed into the headers editor is sent and never stored, and the schema (the
 * docs, the editors' checks) is asked for only once the gateway has taken a token. Each test starts the
 * gateway it needs. Apart from ide.test.ts so that each file stays well within the runner's 300 s a file on
 * a loaded machine (fifteen browser tests in one file took 30 s each at a load of 11, and the file was cut).
 */

before(() => {
  if (!skipReason) ensureIdeBuilt();
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
    // Nor is a token never sent (pasted with a typographic quote: a header fetch refuses). Taken as if the gateway
    // had, the schema was asked for with it, failed unsent, and was not asked for again once a real token was.
    const headers = page.locator('.graphiql-editor-tool .graphiql-editor:not(.hidden)');
    await headers.getByText(/Bearer/).first().waitFor();
    await replaceText(page, headers, '{ "Authorization": "Bearer “abc”" }');
    await page.locator('.graphiql-execute-button').click();
    await page.locator('.graphiql-response').getByText('Request not sent').first().waitFor();
    await page.locator('.graphiql-execute-button[aria-label^="Execute query"]').waitFor();
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
    // gateway failing (500: a refusal that would stand; a 503 says nothing of the schema, and is asked again,
    // see ide-schema-unanswered.test.ts). GraphiQL sends each schema request twice when the first gets no data.
    let failing = false;
    await page.route(authed.gateway.url, async (route) => {
      const request = route.request();
      if (operationName(request) !== 'IdeSchema') return route.continue();
      const expired = request.headers()['authorization'] === `Bearer ${token}`;
      if (!failing && !expired) return route.continue();
      const [status, message] = failing ? [500, 'The gateway is failing'] : [401, 'The token expired meanwhile'];
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

browserTest('with auth and introspection on, a docs panel left open comes back once the schema has, not as the page opens with none to show', async (_context, page) => {
  const authed = await startStack({ emulator: { seed: 'demo' }, gateway: { auth: { jwtSecret: SECRET }, introspection: true } });
  try {
    const token = await hsToken({ scope: 'contextio:admin' });
    const docs = page.locator('.graphiql-doc-explorer');
    const docsShown = () => sidebar(page).getByRole('button', { name: /Hide Documentation Explorer/ }).count();
    await page.goto(authed.gateway.url);
    await page.locator('.graphiql-container').waitFor();
    await runWithToken(page, token);
    await openDocs(page);
    await docs.getByText('Query', { exact: true }).first().waitFor();
    await page.waitForFunction("localStorage.getItem('graphiql:visiblePlugin') === 'Documentation Explorer'");

    // GraphiQL restored the panel as the page opened, where the schema waits for a token: red with "No GraphQL
    // schema available" until an operation had run with one. The sidebar's button says from the first render on.
    await page.reload();
    await sidebar(page).getByRole('button', { name: /History/ }).waitFor();
    assert.equal(await docsShown(), 0, 'no docs panel before the schema has come');
    assert.equal(await page.getByText('No GraphQL schema available').count(), 0);
    // Once it has, the panel is back as it was left, and stays so for the next visit.
    await runWithToken(page, token);
    await docs.getByText('Query', { exact: true }).first().waitFor();
    assert.equal(await docsShown(), 1, 'the docs panel is back once the schema has come');
    assert.equal(await page.evaluate("localStorage.getItem('graphiql:visiblePlugin')"), 'Documentation Explorer');
  } finally {
    await authed.close();
  }
});
