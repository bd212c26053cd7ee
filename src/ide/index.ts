import { open, readFile, type FileHandle } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { finished } from 'node:stream';
import { carriesOperation } from '../http/request.ts';
import { streamOnceFlushed } from '../http/respond.ts';
import { isOutOfFileDescriptors } from '../support/file-descriptors.ts';
import { projectRoot } from '../support/project-root.ts';
import type { IdeConfig } from './config.ts';

/**
 * The GraphQL IDE: `GET /graphql` from a browser gets a GraphiQL page, whose scripts and styles come from
 * `/graphql/ide/*`, bundled at build time into `dist/ide/` by scripts/build-ide.mjs. Nothing is loaded from
 * another origin (the page's Content-Security-Policy forbids it), so the IDE works offline.
 */

/**
 * The example the IDE opens with: the accounts and how their mailboxes are doing, the gateway's core read.
 * Its `{{docs}}` line says where the schema's documentation is, its `{{token}}` line whether a token is needed.
 */
const DEFAULT_QUERY = `# ▶ or Ctrl-Enter (⌘-Enter on a Mac) runs it.
# {{docs}}
# {{token}}
query AccountsWithSources {
  accounts(first: 5) {
    nodes {
      id
      emailAddresses
      firstName
      lastName
      createdAt
      sources {
        label
        email
        status
      }
    }
    pageInfo {
      hasNextPage
      endCursor
    }
  }
}
`;

/** With authentication on, where the caller's token goes; with it off, no header at all, so nothing looks missing. */
const TOKEN_HEADERS = '{\n  "Authorization": "Bearer <token>"\n}\n';
/** Short enough for the editor's width beside the docs panel. */
const TOKEN_HINT = { required: 'Token: in Headers, below.', open: 'No token: auth is off here.' };
/**
 * With introspection off the page has no docs panel: the example says where the schema is instead, as the gateway's
 * refusal of introspection does (on a second line: with no panel beside it the editor has the width). With a
 * token required, the panel fills once an operation has run with one (the page asks for the schema only then).
 */
const DOCS_HINT = {
  on: 'Docs: the panel on the left.',
  afterToken: 'Docs: on the left, once a query ran.',
  off: 'No docs: introspection off.\n# Schema: schema.graphql in the gateway’s source.',
};

export interface IdeOptions {
  /**
   * Whether the IDE is served (default true). Off (`IDE=false`), its page and files are answered 404 saying so,
   * and GraphQL clients are unaffected: a team may keep an explorer of its schema off a production endpoint.
   */
  enabled?: boolean;
  /** Folder of the built bundle; default `dist/ide/` in the project. */
  assetDir?: string;
  /** Whether callers need a token (default true): the IDE then opens with an Authorization header to fill in. */
  tokenRequired?: boolean;
  /**
   * Whether the gateway answers introspection (default true): without it the IDE asks for no schema, where the
   * refusal would otherwise fill the result pane, and has no docs panel, which could only say it has no schema.
   */
  introspection?: boolean;
}

export interface Ide {
  /** Whether the request is the IDE's: the page (asked for by a browser navigating to the endpoint) or one of its assets. */
  owns(req: IncomingMessage, url: URL): boolean;
  /** Serves the request when it is the IDE's (`owns`); `false` leaves it to the caller. */
  handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean>;
}

interface Manifest {
  /** Logical name (`app.js`) → content-hashed file name (`app-ABCD1234.js`). */
  assets: Record<string, string>;
}

const CONTENT_TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

/**
 * Scripts and workers from this origin only; inline styles because Monaco and GraphiQL set them at run time;
 * fetches to this origin only, so a copy of the page cannot be pointed at somebody else's endpoint.
 */
const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "worker-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "font-src 'self' data:",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/**
 * The policy of the page's files themselves. A worker runs under the policy of its own script's answer, not the
 * page's: the editors' language workers need nothing beyond their own code, so they may load and fetch nothing.
 */
const ASSET_CSP = "default-src 'none'; frame-ancestors 'none'";

/** The contract's endpoint, where the page is served beside the operations it sends. */
const ENDPOINT_PATH = '/graphql';
/**
 * The endpoint as the page names it, relative to its own address, and its files (`graphql/ide/…`): behind a
 * proxy that mounts the gateway under a prefix (`/api/graphql`), absolute paths would miss it.
 */
const PAGE_ENDPOINT = 'graphql';
const ASSET_PREFIX = `${ENDPOINT_PATH}/ide/`;
const PAGE_ASSET_PREFIX = `${PAGE_ENDPOINT}/ide/`;

export function createIde(options: IdeOptions = {}): Ide {
  const assetDir = options.assetDir ?? join(projectRoot(), 'dist', 'ide');
  const enabled = options.enabled ?? true;
  const page: PageSettings = {
    tokenRequired: options.tokenRequired ?? true,
    introspection: options.introspection ?? true,
  };

  const pageAsked = (req: IncomingMessage, url: URL) => (req.method === 'GET' || req.method === 'HEAD') && wantsIde(req, url);
  const owns = (req: IncomingMessage, url: URL) =>
    url.pathname.startsWith(ASSET_PREFIX) || (pageAsked(req, url) && (url.pathname === ENDPOINT_PATH || url.pathname === `${ENDPOINT_PATH}/`));

  async function serve(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    if (!enabled) {
      if (url.pathname.startsWith(ASSET_PREFIX)) return sendText(res, 404, 'the GraphQL IDE is turned off on this gateway (IDE=false)');
      return sendHtml(res, 404, turnedOffPage());
    }
    if (url.pathname.startsWith(ASSET_PREFIX)) {
      if (req.method !== 'GET' && req.method !== 'HEAD') return sendText(res, 405, 'method not allowed', { allow: 'GET, HEAD' });
      return serveAsset(req, res, assetDir, url.pathname.slice(ASSET_PREFIX.length));
    }
    if (url.pathname === ENDPOINT_PATH) {
      const manifest = await readManifest(assetDir);
      const html = manifest && pageHtml(page, manifest);
      if (html === undefined) sendHtml(res, 503, notBuiltPage());
      else sendHtml(res, 200, html);
      return;
    }
    // The address typed with a trailing slash: the page, whose links are relative to its own address, would
    // miss its files there, so the browser is sent to the endpoint. Relative, to keep a proxy's prefix. A
    // client's Accept gets a 404 at the same address, which a cache must tell apart (308s are cacheable).
    sendText(res, 308, `the IDE is at ${ENDPOINT_PATH}`, { location: `../${PAGE_ENDPOINT}${url.search}`, vary: 'accept' });
  }

  return {
    owns,
    async handle(req, res, url) {
      if (!owns(req, url)) return false;
      try {
        await serve(req, res, url);
      } catch (error) {
        if (!(error instanceof OutOfFileDescriptors)) throw error;
        sendText(res, 503, 'the gateway is out of file descriptors for now (its limit of open files, ulimit -n): try again', { 'retry-after': '1' });
      }
      return true;
    },
  };
}

/** What the page says, from the gateway's settings. */
interface PageSettings {
  tokenRequired: boolean;
  introspection: boolean;
}

/**
 * Read per request rather than once: a `npm run build` while the gateway runs is picked up, and the
 * manifest is the allow-list of servable files, so a request path never reaches the file system as such.
 */
async function readManifest(assetDir: string): Promise<Manifest | undefined> {
  try {
    const manifest = JSON.parse(await readFile(join(assetDir, 'manifest.json'), 'utf8')) as Manifest;
    return typeof manifest.assets === 'object' && manifest.assets !== null ? manifest : undefined;
  } catch (error) {
    throwIfOutOfFileDescriptors(error);
    return undefined;
  }
}

/**
 * The process out of file descriptors (its limit of open files reached under load): no file of the build can be
 * read for now, which is neither a build missing (its page says to run the build) nor a file unknown (404).
 */
class OutOfFileDescriptors extends Error {}

function throwIfOutOfFileDescriptors(error: unknown): void {
  if (isOutOfFileDescriptors((error as NodeJS.ErrnoException).code)) throw new OutOfFileDescriptors((error as Error).message);
}

/**
 * Shown in the IDE's place when its script has not run 10 seconds after the page (long enough for its bundle on a
 * slow connection: it says what to do if the IDE does not come): React's first render replaces it. Behind a
 * balancer whose instances run two builds (a rolling deploy), the page of one names its script by its build's
 * hash, which another answers 404: the page stayed blank, the notice of a new build being in that script. Inline,
 * as the style file is the build's too; hidden without JavaScript, where the noscript line says why.
 */
const NOT_LOADED_STYLE = `<style>.ide-not-loaded{visibility:hidden;margin:2rem;font-family:system-ui,sans-serif;animation:ide-not-loaded 0s 10s forwards}@keyframes ide-not-loaded{to{visibility:visible}}</style>
<noscript><style>.ide-not-loaded{display:none}</style></noscript>`;
const NOT_LOADED_NOTICE =
  '<p class="ide-not-loaded" role="status">The IDE has not loaded. If it does not come, reload the page: the gateway may just have been redeployed, ' +
  'or, behind a load balancer, its instances may run different builds, the page coming from one and its script asked of another.</p>';

/** The GraphiQL page, configured for this gateway; undefined when the build left out a file it needs. */
function pageHtml({ tokenRequired, introspection }: PageSettings, manifest: Manifest): string | undefined {
  const asset = (name: string) => manifest.assets[name];
  if (!asset('app.js') || !asset('app.css')) return undefined;
  const docsHint = !introspection ? DOCS_HINT.off : tokenRequired ? DOCS_HINT.afterToken : DOCS_HINT.on;
  const config: IdeConfig = {
    endpoint: PAGE_ENDPOINT,
    workers: {
      editor: PAGE_ASSET_PREFIX + asset('editor.worker.js'),
      json: PAGE_ASSET_PREFIX + asset('json.worker.js'),
      graphql: PAGE_ASSET_PREFIX + asset('graphql.worker.js'),
    },
    defaultQuery: DEFAULT_QUERY.replace('{{docs}}', docsHint).replace('{{token}}', tokenRequired ? TOKEN_HINT.required : TOKEN_HINT.open),
    defaultHeaders: tokenRequired ? TOKEN_HEADERS : '',
    introspection,
    tokenRequired,
  };
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>GraphiQL · Context.IO GraphQL gateway</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${PAGE_ASSET_PREFIX}${asset('app.css')}">
<script id="ide-config" type="application/json">${jsonForScript(config)}</script>
<script type="module" src="${PAGE_ASSET_PREFIX}${asset('app.js')}"></script>
${NOT_LOADED_STYLE}
</head>
<body>
<main>
<h1 class="visually-hidden">GraphQL IDE of the Context.IO GraphQL gateway</h1>
<div id="graphiql"><noscript>The GraphQL IDE needs JavaScript. Send queries with POST ${ENDPOINT_PATH} instead.</noscript>${NOT_LOADED_NOTICE}</div>
</main>
</body>
</html>
`;
}

/** One of the build's files (`name` as the page asks for it), gzipped when the browser takes that. */
async function serveAsset(req: IncomingMessage, res: ServerResponse, assetDir: string, name: string): Promise<void> {
  const manifest = await readManifest(assetDir);
  // Only names the build produced are served; anything else (`..`, `%2e%2e`, absolute paths) is just unknown.
  const known = manifest !== undefined && Object.values(manifest.assets).includes(name);
  const type = CONTENT_TYPES[name.slice(name.lastIndexOf('.'))];
  if (!known || type === undefined) return sendText(res, 404, `no such IDE asset: ${name}`);

  const gzip = acceptsGzip(req);
  const file = join(assetDir, gzip ? `${name}.gz` : name);
  // Opened before the answer's headers: a file that cannot be opened then (the process out of descriptors) is
  // answered 503, where a 200 sent first was cut off.
  let handle: FileHandle;
  try {
    handle = await open(file, 'r');
  } catch (error) {
    throwIfOutOfFileDescriptors(error);
    return sendText(res, 404, `no such IDE asset: ${name}`);
  }
  const size = await handle.stat().then(
    (stats) => stats.size,
    async (error: unknown) => {
      await handle.close();
      throw error;
    },
  );
  res.writeHead(200, {
    'content-type': type,
    'content-length': String(size),
    // The name carries the content's hash: a changed file is a new URL, so this one never goes stale.
    'cache-control': 'public, max-age=31536000, immutable',
    'content-security-policy': ASSET_CSP,
    'x-content-type-options': 'nosniff',
    vary: 'accept-encoding',
    ...(gzip ? { 'content-encoding': 'gzip' } : {}),
  });
  if (req.method === 'HEAD') {
    await handle.close();
    res.end();
    return;
  }
  streamOnceFlushed(handle.createReadStream(), res);
  // Settles on the response's close, or at once when it closed during the lookups above.
  await new Promise<void>((resolve) => finished(res, () => resolve()));
}

/**
 * A browser navigating to the endpoint, as opposed to a GraphQL client using GET: it asks for HTML and sends
 * no operation. A GET with `?query=`, or a persisted query's `?extensions=`, is always an operation, whatever
 * the Accept header says.
 */
function wantsIde(req: IncomingMessage, url: URL): boolean {
  return !carriesOperation(url) && namesAcceptably(req.headers.accept, 'text/html');
}

function acceptsGzip(req: IncomingMessage): boolean {
  return namesAcceptably(req.headers['accept-encoding'], 'gzip');
}

/**
 * Whether a comma-separated header of the Accept kind names `value` itself with a quality above 0
 * (`text/html;q=0` says "never HTML"). A wildcard does not count: curl accepting any type is no browser.
 */
function namesAcceptably(header: string | string[] | undefined, value: string): boolean {
  const text = Array.isArray(header) ? header.join(',') : (header ?? '');
  return text.split(',').some((part) => {
    const [name, ...params] = part.toLowerCase().split(';');
    return name!.trim() === value && !params.some((param) => /^\s*q=0(\.0*)?\s*$/.test(param));
  });
}

function turnedOffPage(): string {
  return messagePage('GraphQL IDE turned off', 'The GraphQL IDE is turned off', [
    'This gateway runs with <code>IDE=false</code>, so it serves no IDE to browsers.',
    `The GraphQL endpoint itself works: send operations with <code>POST ${ENDPOINT_PATH}</code>.`,
  ]);
}

function notBuiltPage(): string {
  return messagePage('GraphQL IDE not built', 'The GraphQL IDE is not built', [
    'Its bundle is missing from <code>dist/ide/</code>. Run <code>npm run build</code> (or <code>npm start</code>, which builds first) and reload this page.',
    'The GraphQL endpoint itself works without it: send operations with <code>POST /graphql</code>.',
  ]);
}

/** A page of a few paragraphs of the gateway's own (`paragraphs` as HTML), where the IDE's page would be. */
function messagePage(title: string, heading: string, paragraphs: string[]): string {
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${title}</title><link rel="icon" href="data:,"></head>
<body>
<main>
<h1>${heading}</h1>
${paragraphs.map((paragraph) => `<p>${paragraph}</p>`).join('\n')}
</main>
</body>
</html>
`;
}

function sendHtml(res: ServerResponse, status: number, html: string): void {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'content-length': String(Buffer.byteLength(html)),
    // The page names the current bundle's hashed files, so it must be revalidated to pick up a rebuild.
    'cache-control': 'no-cache',
    'content-security-policy': CSP,
    // The CSP's frame-ancestors for browsers that predate it: the page is never framed (clickjacking).
    'x-frame-options': 'DENY',
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    vary: 'accept',
  });
  res.end(res.req.method === 'HEAD' ? undefined : html);
}

function sendText(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff', ...headers });
  res.end(text);
}

/** JSON that is safe inside a <script> element: no `</script>` or `<!--` can close or confuse it. */
function jsonForScript(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026');
}
