import assert from 'node:assert/strict';
import { before } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { startStack } from '../helpers/stack.ts';
import { hsToken, SECRET, startJwksServer } from '../auth/helpers.ts';
import { browserTest, ensureIdeBuilt, skipReason } from './browser.ts';
import { openDocs, operationName, recordSentOperations, runWithToken } from './ide-page.ts';

/**
 * The IDE of a gateway with auth and introspection on, whose answers say nothing of the token or the schema for
 * a while: a proxy's rate-limit page, the gateway's 503 while it cannot verify a token or is loaded. Apart from
 * ide-schema-and-auth.test.ts so that each file stays well within the runner's 300 s a file on a loaded machine.
 */

before(() => {
  if (!skipReason) ensureIdeBuilt();
});

browserTest('with auth and introspection on, the schema waits for an answer that shows the token taken, and one that got no answer from the gateway is asked again after the next operation', async (_context, page) => {
  // A key set out of reach from the start: a token of its key is answered 503, one signed with the secret 200.
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const jwks = await startJwksServer([{ ...(await exportJWK(publicKey)), kid: 'k', alg: 'RS256', use: 'sig' }]);
  jwks.setFailing(true);
  try {
    const authed = await startStack({ emulator: { seed: 'demo' }, gateway: { auth: { jwtSecret: SECRET, jwksUrl: jwks.url }, introspection: true } });
    try {
      const token = await hsToken({ scope: 'contextio:admin' });
      const keySetToken = await new SignJWT({ scope: 'contextio:admin' }).setProtectedHeader({ alg: 'RS256', kid: 'k' }).setIssuedAt().setExpirationTime('10m').sign(privateKey);
      // A proxy in front answers every request with its rate-limit page while `limited`; the schema requests
      // get the gateway's load refusal while `loaded`.
      let limited = false;
      let loaded = false;
      await page.route(authed.gateway.url, async (route) => {
        if (limited) return route.fulfill({ status: 429, contentType: 'text/html', headers: { 'retry-after': '30' }, body: '<html><body>Too Many Requests</body></html>' });
        if (!loaded || operationName(route.request()) !== 'IdeSchema') return route.continue();
        const refusal = { message: 'The gateway is running as many operations as it may at once (1000); retry shortly', extensions: { code: 'SERVICE_UNAVAILABLE' } };
        return route.fulfill({ status: 503, contentType: 'application/json', headers: { 'retry-after': '1' }, body: JSON.stringify({ errors: [refusal] }) });
      });
      const sentOperations = await recordSentOperations(page);
      /**
       * The docs, opened at the first visit; after a reload the panel left open comes back by itself once the
       * schema has (clicking its button meanwhile raced it: the click could close the panel it had just opened).
       */
      let docsOpened = false;
      const docsLoaded = async () => {
        if (!docsOpened) await openDocs(page);
        docsOpened = true;
        await page.locator('.graphiql-doc-explorer').getByText('Query', { exact: true }).first().waitFor();
      };

      // The proxy's page shows nothing of the token: the schema is not asked for after it, but after the next
      // operation, which the gateway took. Asked for after the page, it got the same page, which took the result
      // pane's place, and it was never asked for again: the docs said "Error fetching schema".
      await page.goto(authed.gateway.url);
      await page.locator('.graphiql-container').waitFor();
      limited = true;
      await runWithToken(page, token, { answer: 'HTTP 429 (Retry-After: 30)' });
      await page.locator('.graphiql-execute-button[aria-label^="Execute query"]').waitFor();
      limited = false;
      await runWithToken(page, token);
      await docsLoaded();
      assert.deepEqual(await sentOperations(), ['AccountsWithSources', 'AccountsWithSources', 'IdeSchema']);

      // Nor does the gateway's 503 when it cannot verify the token (its key set out of reach).
      await page.reload();
      await page.locator('.graphiql-container').waitFor();
      await runWithToken(page, keySetToken, { answer: 'The token could not be verified right now' });
      await page.locator('.graphiql-execute-button[aria-label^="Execute query"]').waitFor();
      await runWithToken(page, token);
      await docsLoaded();
      assert.deepEqual(await sentOperations(), ['AccountsWithSources', 'AccountsWithSources', 'IdeSchema']);

      // A schema request refused for load is asked again after the next operation the gateway took, with the
      // same headers: the refusal said nothing of the schema.
      loaded = true;
      await page.reload();
      await page.locator('.graphiql-container').waitFor();
      await runWithToken(page, token, { answer: 'The gateway is running as many operations' });
      loaded = false;
      await runWithToken(page, token);
      await docsLoaded();
      assert.deepEqual(await sentOperations(), ['AccountsWithSources', 'IdeSchema', 'IdeSchema', 'AccountsWithSources', 'IdeSchema']);
    } finally {
      await authed.close();
    }
  } finally {
    await jwks.close();
  }
});
