import assert from 'node:assert/strict';
import { browserTest, useIdeStack } from './browser.ts';
import { replaceText, sidebar } from './ide-page.ts';

/**
 * What the IDE keeps in the browser's storage, as a person meets it in Chromium: the tabs and variables kept
 * across a reload, the settings' "Clear data", and a storage that refuses reads or writes. Apart from
 * ide.test.ts so that each file stays well within the runner's 300 s a file on a loaded machine: the twelve
 * tests together took over 300 s at a load of ~15 on 2 cores, and the file was cut.
 */

const stack = useIdeStack();

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

browserTest('the IDE’s tabs come back after a reload, each with its own query', async (_context, page) => {
  await page.goto(stack.gateway.url);
  await page.locator('.graphiql-container').waitFor();
  const editor = page.locator('.graphiql-query-editor');
  await replaceText(page, editor, 'query One { __typename }');
  await page.locator('.graphiql-tab-add').click();
  await replaceText(page, editor, 'query Two { __typename }');
  // GraphiQL stores its tabs a while after the last key.
  await page.waitForFunction(() => {
    const { localStorage } = globalThis as unknown as { localStorage: { getItem(key: string): string | null } };
    const tabs = (JSON.parse(localStorage.getItem('graphiql:tabState') ?? '{}') as { tabs?: Array<{ query: string | null }> }).tabs;
    return tabs?.length === 2 && tabs[1]?.query === 'query Two { __typename }';
  });

  await page.reload();
  await page.locator('.graphiql-container').waitFor();
  // Stored without their `headers` key (rather than with it null), the tabs were taken for damaged and
  // dropped: the page came back with a single tab.
  const tabs = page.locator('.graphiql-tab');
  await tabs.getByText('Two').first().waitFor();
  assert.deepEqual(await tabs.allInnerTexts(), ['One', 'Two']);
});

browserTest('the settings’ “Clear data” removes the IDE’s own stored keys and leaves the origin’s other keys alone', async (_context, page) => {
  await page.goto(stack.gateway.url);
  await page.locator('.graphiql-container').waitFor();
  // What another page of the gateway's origin keeps there (a frontend served beside it, behind the same host).
  await page.evaluate(`localStorage.setItem('frontend:session', 'kept')`);
  await sidebar(page).getByRole('button', { name: /settings/ }).click();
  const dialog = page.getByRole('dialog');
  await dialog.getByRole('button', { name: 'Clear data' }).click();
  await dialog.getByRole('button', { name: 'Cleared data' }).waitFor();
  const keys = (await page.evaluate('Object.keys(localStorage)')) as string[];
  assert.ok(!keys.includes('graphiql:visited'), `the IDE's own keys are gone (${keys.join(', ')})`);
  assert.equal(await page.evaluate(`localStorage.getItem('frontend:session')`), 'kept', 'a key of another page of the origin stays');
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
