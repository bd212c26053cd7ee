import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { after, before } from 'node:test';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { projectRoot } from '../../src/support/project-root.ts';
import { startStack, type Stack } from '../helpers/stack.ts';

/**
 * Browser tests drive Debian's Chromium with playwright-core (never a browser download). Without it they are
 * skipped, with a message that says how to get it; `.ci/run` installs it, so CI always runs them.
 */
const CHROMIUM = process.env['CHROMIUM_PATH'] || '/usr/bin/chromium';

export const skipReason = existsSync(CHROMIUM)
  ? undefined
  : `skipped: no Chromium at ${CHROMIUM}. Install Debian's package (apt-get install -y chromium) or set CHROMIUM_PATH to run the browser tests`;

if (skipReason) console.log(`# browser tests ${skipReason}`);

/** Where failure screenshots go (git-ignored). */
const RESULTS_DIR = join(projectRoot(), 'test-results');

export interface BrowserTestOptions {
  /**
   * Keep the back/forward cache on, as in the browsers people use: playwright turns it off by default, so a page
   * left by a navigation comes back reloaded on Back, never as it was left.
   */
  backForwardCache?: boolean;
}

/**
 * A browser test: a fresh Chromium profile per test, every page's console errors collected, and on failure
 * a screenshot of each open page in test-results/ before the error is reported.
 */
export function browserTest(name: string, body: (context: BrowserContext, page: Page) => Promise<void>, options: BrowserTestOptions = {}): void {
  test(name, { skip: skipReason, timeout: 120_000 }, async () => {
    const profile = await mkdtemp(join(tmpdir(), 'contextio-graphql-chromium-'));
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1280, height: 800 },
      ...(options.backForwardCache ? { ignoreDefaultArgs: ['--disable-back-forward-cache'] } : {}),
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--disable-quic',
      ],
    });
    try {
      const page = context.pages()[0] ?? (await context.newPage());
      page.setDefaultTimeout(30_000);
      await body(context, page);
    } catch (error) {
      await mkdir(RESULTS_DIR, { recursive: true });
      const slug = name.replace(/[^\w]+/g, '-').replace(/^-|-$/g, '').slice(0, 80);
      for (const [index, page] of context.pages().entries()) {
        const file = join(RESULTS_DIR, `${slug}-${index}.png`);
        await page.screenshot({ path: file, fullPage: true }).catch(() => undefined);
        console.log(`# screenshot of the failing page: ${file} (${page.url()})`);
      }
      throw error;
    } finally {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    }
  });
}

/** Records every request the browser makes to an origin other than the allowed ones: proof of "no CDN". */
export function foreignRequests(context: BrowserContext, allowedOrigins: string[]): string[] {
  const foreign: string[] = [];
  context.on('request', (request) => {
    const url = request.url();
    if (url.startsWith('data:') || url.startsWith('blob:')) return;
    if (!allowedOrigins.some((origin) => url.startsWith(origin + '/'))) foreign.push(url);
  });
  return foreign;
}

/**
 * `npm test` builds the IDE bundle before the tests; this rebuilds it when it is missing or older than what it is
 * built from (its sources, at any depth, its build script, and the locked dependencies it bundles), so a browser
 * test run on its own never tests a stale bundle.
 */
export function ensureIdeBuilt(): void {
  const root = projectRoot();
  const manifest = join(root, 'dist', 'ide', 'manifest.json');
  const sources = join(root, 'src', 'ide', 'browser');
  const inputs = [
    ...readdirSync(sources, { recursive: true }).map((name) => join(sources, String(name))),
    join(root, 'scripts', 'build-ide.mjs'),
    join(root, 'package-lock.json'),
  ];
  const builtAt = existsSync(manifest) ? statSync(manifest).mtimeMs : 0;
  const stale = inputs.some((input) => statSync(input).mtimeMs > builtAt);
  if (stale) execFileSync(process.execPath, [join(root, 'scripts', 'build-ide.mjs')], { stdio: 'inherit' });
}

/**
 * The gateway over the demo world that a file of IDE tests shares: started (the IDE built first) before its
 * tests, closed after them; none when the browser tests are skipped.
 */
export function useIdeStack(): Stack {
  let stack: Stack | undefined;
  before(async () => {
    if (skipReason) return;
    ensureIdeBuilt();
    stack = await startStack({ emulator: { seed: 'demo' } });
  });
  after(async () => {
    await stack?.close();
  });
  return new Proxy({} as Stack, { get: (_, key) => Reflect.get(stack!, key) });
}

/** What the browser's accessibility tree says of the element `selector` finds: what a screen reader is told. */
export async function accessibleNode(page: Page, selector: string): Promise<{ name?: string; description?: string; invalid?: string; focused?: boolean }> {
  const cdp = await page.context().newCDPSession(page);
  try {
    const { root } = await cdp.send('DOM.getDocument');
    const { nodeId } = await cdp.send('DOM.querySelector', { nodeId: root.nodeId, selector });
    const { nodes } = await cdp.send('Accessibility.getPartialAXTree', { nodeId, fetchRelatives: false });
    const node = nodes[0]!;
    const property = (name: string) => node.properties?.find((p) => p.name === name)?.value.value as unknown;
    return {
      name: node.name?.value as string | undefined,
      description: node.description?.value as string | undefined,
      invalid: property('invalid') as string | undefined,
      focused: property('focused') === true,
    };
  } finally {
    await cdp.detach();
  }
}
