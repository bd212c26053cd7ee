import assert from 'node:assert/strict';
import { browserTest, useIdeStack } from './browser.ts';

/**
 * The IDE's page behind a balancer while instances of two builds serve side by side (a rolling deploy): the page
 * comes from one, its script, named by its build's hash, is asked of another, which answers 404. Simulated here
 * by answering the script 404, as that other instance does.
 */
const stack = useIdeStack();

browserTest('a page whose script another build’s instance answers 404 says to reload, rather than staying blank; a page whose script loads shows none of it', async (_context, page) => {
  await page.goto(stack.gateway.url);
  await page.locator('.graphiql-container').waitFor();
  assert.equal(await page.locator('.ide-not-loaded').count(), 0, 'the IDE, once mounted, leaves nothing of the notice behind');

  await page.route(/\/graphql\/ide\/app-[^/]+\.js$/, (route) => route.fulfill({ status: 404, contentType: 'text/plain', body: 'no such IDE asset: app-XXXXXXXX.js' }));
  await page.reload();
  const notice = page.getByText(/The IDE has not loaded/);
  await notice.waitFor({ state: 'visible' });
  assert.ok(/reload/i.test((await notice.textContent()) ?? ''), 'the notice says what to do: reload');
});
