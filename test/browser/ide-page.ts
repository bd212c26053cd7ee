import type { Locator, Page, Request, Response } from 'playwright-core';

// What the IDE's browser tests do with its page: type into its editors, run an operation, find its sidebar's
// buttons, record the operations it sends.

/**
 * Replaces the headers editor's placeholder with `token`, as a person pasting it would, and runs the example
 * query; or `query`, typed in its place, which names its operation `operation`. Returns the gateway's answer
 * once it came and `answer` shows in the result pane: waiting for this run's answer first, so that the same
 * text left there by an earlier run is not taken for it.
 */
export async function runWithToken(
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
export const operationName = (request: Request): string | undefined => (request.postDataJSON() as { operationName?: string } | null)?.operationName;

/** Replaces the whole text of one of the page's Monaco editors (`editor`) with `text`, as a person pasting it would. */
export async function replaceText(page: Page, editor: Locator, text: string): Promise<void> {
  await editor.click();
  await page.keyboard.press('ControlOrMeta+A');
  if (text === '') return page.keyboard.press('Delete');
  await page.keyboard.insertText(text);
  // Monaco closes quotes and braces as they are typed: drop what it added after the cursor.
  await page.keyboard.press('Shift+ControlOrMeta+End');
  await page.keyboard.press('Delete');
}

/** Where `recordSentOperations` keeps the operation names, in the page (functions run there see it). */
export type Recorded = { sentOperations: (string | null)[] };

/**
 * From the next page load on, the name of every operation the page sends, recorded in the page as its
 * `fetch` is called: unlike the browser's reports of requests, which come in later, what it holds once the
 * page has shown something is all the page had sent by then.
 */
export async function recordSentOperations(page: Page): Promise<() => Promise<(string | null)[]>> {
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

/** The buttons down the IDE's left edge, GraphiQL's sidebar: the panels', then re-fetch, short keys, settings. */
export const sidebar = (page: Page) => page.locator('.graphiql-sidebar');
/** GraphiQL's sidebar button that asks for the schema again; getByRole finds it only while shown. */
export const refetchButton = (page: Page) => sidebar(page).getByRole('button', { name: /Re-fetch GraphQL schema/ });
/** Opens the docs panel by its sidebar button, as a person would where it does not open by itself. */
export const openDocs = (page: Page) => sidebar(page).getByRole('button', { name: /Show Documentation Explorer/ }).click();

/** Whether the sidebar's settings button is still at its foot, where the re-fetch button, when shown, holds them. */
export async function settingsAtSidebarFoot(page: Page): Promise<boolean> {
  const settings = (await sidebar(page).getByRole('button', { name: /settings/ }).boundingBox())!;
  const bar = (await sidebar(page).boundingBox())!;
  return settings.y + settings.height > bar.y + bar.height - 100;
}
