import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { startEmulator, type Emulator } from '../../src/emulator/index.ts';
import { api } from '../emulator/helpers.ts';
import { browserTest, skipReason } from './browser.ts';

/** The emulator's connect page in a browser: what its form lets a person send is what the emulator takes. */

let emulator: Emulator;

before(async () => {
  if (skipReason) return;
  emulator = await startEmulator({ port: 0, host: '127.0.0.1', seed: 'none' });
});

after(async () => {
  await emulator?.close();
});

browserTest('the connect form sends a port only in the digits the emulator takes', async (_context, page) => {
  const { body } = await api(emulator, '/connect_tokens', { form: { callback_url: `${emulator.url}/done` } });
  const posts: string[] = [];
  page.on('request', (request) => {
    if (request.method() === 'POST') posts.push(request.url());
  });
  await page.goto(String(body['browser_redirect_url']));
  await page.fill('#email', 'ada@example.com');

  // A number input takes 1e3 (a thousand) and its browser would send it as typed, which the emulator refuses.
  await page.fill('#port', '1e3');
  await page.locator('button#connect').click();
  assert.equal(await page.locator('#port:invalid').count(), 1, 'the browser finds the port invalid');
  assert.deepEqual(posts, [], 'the browser kept the form');

  await page.fill('#port', '993');
  await page.locator('button#connect').click();
  await page.waitForURL((url) => url.pathname.endsWith('/done') && url.searchParams.has('contextio_token'));
  assert.equal(posts.length, 1);
});
