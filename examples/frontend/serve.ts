import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { startEmulator, type Emulator } from '../../src/emulator/index.ts';
import { escapeHtml } from '../../src/support/html.ts';
import { describeListenFailure } from '../../src/http/listen.ts';
import { createLogger, silentLogger, type Logger } from '../../src/logging/logger.ts';
import { argumentsProblem, wholeNumberSetting } from '../../src/config/settings.ts';
import { quotedSetting } from '../../src/support/shortened.ts';
import { hasCredentials, isHttpUrl } from '../../src/support/url.ts';
import { startGateway, type Gateway } from '../../src/http/server.ts';

/**
 * Serves the example frontend: bundles src/ with esbuild (in memory) and serves the two pages. Without
 * `gatewayUrl` it also starts the embedded emulator and a gateway that allows this page's origin (CORS), so
 * `npm run example:frontend` is a complete offline demo of the connect flow. With `GATEWAY_URL`, it uses that
 * gateway, which must list this page's origin in its `CORS_ORIGINS`.
 */

const here = dirname(fileURLToPath(import.meta.url));

export interface ExampleOptions {
  port?: number;
  host?: string;
  /** An already running gateway's `/graphql` URL; unset: start emulator + gateway in-process. */
  gatewayUrl?: string;
  logger?: Logger;
}

export interface ExampleServer {
  /** The start page, e.g. `http://127.0.0.1:5173/`. */
  readonly url: string;
  readonly origin: string;
  readonly gatewayUrl: string;
  /** Present when this process started them. */
  readonly gateway?: Gateway;
  readonly emulator?: Emulator;
  close(): Promise<void>;
}

/**
 * Generates the typed documents (git-ignored) at every start, not only when missing: a src/gql/ made before an
 * operation changed does not know its new text, and its `graphql()` returns `{}`, which the page would send as
 * the query "[object Object]". The bundle is made once per start, so a change needs a restart either way.
 */
function generateDocuments(): void {
  const codegen = join(here, '..', '..', 'scripts', 'codegen.mjs');
  try {
    execFileSync(process.execPath, [codegen, '--config', 'codegen.yml', '--silent'], { cwd: here, stdio: 'inherit' });
  } catch {
    // The generator has said why (a schema change an operation does not match, say): no stack trace after it.
    throw new CodegenFailed();
  }
}

class CodegenFailed extends Error {
  constructor() {
    super("GraphQL Code Generator failed on the example's operations (its output above)");
  }
}

async function bundle(): Promise<Map<string, string>> {
  generateDocuments();
  const result = await build({
    entryPoints: { app: join(here, 'src', 'app.ts'), callback: join(here, 'src', 'callback.ts') },
    bundle: true,
    format: 'esm',
    target: 'es2022',
    write: false,
    outdir: '/assets',
    logLevel: 'warning',
  });
  const files = new Map<string, string>();
  for (const file of result.outputFiles) files.set(`/assets/${file.path.split('/').pop()}`, file.text);
  files.set('/assets/style.css', readFileSync(join(here, 'style.css'), 'utf8'));
  return files;
}

export async function startExample(options: ExampleOptions = {}): Promise<ExampleServer> {
  const logger = options.logger ?? silentLogger;
  const assets = await bundle();
  const pages = {
    '/': readFileSync(join(here, 'index.html'), 'utf8'),
    '/callback': readFileSync(join(here, 'callback.html'), 'utf8'),
  };
  let gatewayUrl = options.gatewayUrl ?? '';

  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://example.invalid').pathname;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    const page = pages[path as keyof typeof pages];
    if (page !== undefined) {
      // The endpoint is configuration, written into the page rather than built into the bundle. By a function:
      // a replacement string would read the URL's `$&` or `$$` as patterns.
      const html = page.replaceAll('%GRAPHQL_ENDPOINT%', () => escapeHtml(gatewayUrl));
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-cache' }).end(html);
      return;
    }
    const asset = assets.get(path);
    if (asset !== undefined) {
      const type = path.endsWith('.css') ? 'text/css; charset=utf-8' : 'text/javascript; charset=utf-8';
      res.writeHead(200, { 'content-type': type, 'cache-control': 'no-cache' }).end(asset);
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const origin = `http://${options.host ?? '127.0.0.1'}:${port}`;

  let emulator: Emulator | undefined;
  let gateway: Gateway | undefined;
  const closeServer = () => new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
  if (!options.gatewayUrl) {
    try {
      emulator = await startEmulator({ port: 0, host: '127.0.0.1', seed: 'demo' });
      gateway = await startGateway({
        port: 0,
        host: '127.0.0.1',
        upstream: { baseUrl: emulator.url, consumerKey: emulator.consumerKey, consumerSecret: emulator.consumerSecret },
        upstreamTimeoutMs: 10_000,
        upstreamMaxInFlight: 64,
        development: false,
        logger,
        // The page and the gateway are different origins, as in most deployments: the gateway must allow it,
        // at the name printed and at localhost, which Vite (whose port this takes) prints and developers type.
        corsOrigins: [origin, `http://localhost:${port}`],
      });
      gatewayUrl = gateway.url;
    } catch (error) {
      await emulator?.close();
      await closeServer();
      throw error;
    }
  }

  return {
    url: `${origin}/`,
    origin,
    gatewayUrl,
    gateway,
    emulator,
    async close() {
      await closeServer();
      await gateway?.close();
      await emulator?.close();
    },
  };
}

/** Says why the example cannot start, in one line, and exits: a bad setting is not a bug to show a stack trace for. */
function refuseToStart(reason: string): never {
  process.stderr.write(`example:frontend: ${reason}\n`);
  return process.exit(1);
}

/** EXAMPLE_PORT (default 5173), checked before anything starts, as the gateway's own settings are. */
function examplePort(): number {
  const problems: string[] = [];
  const port = wholeNumberSetting('EXAMPLE_PORT', process.env['EXAMPLE_PORT']?.trim() || undefined, { min: 0, max: 65_535 }, problems);
  if (problems[0] !== undefined) refuseToStart(problems[0]);
  return port ?? 5173;
}

/**
 * GATEWAY_URL (unset or blank: start a gateway here), checked before anything starts: one without its scheme
 * (`localhost:4000/graphql`) would start the app, whose page would then send every request to a URL the
 * browser refuses. Not quoted when it may hold credentials, as the gateway's URL settings.
 */
function gatewayUrlSetting(): string | undefined {
  const value = process.env['GATEWAY_URL']?.trim() || undefined;
  if (value === undefined) return value;
  if (!isHttpUrl(value)) {
    const shown = value.includes('@') ? 'a value with an @, not shown' : quotedSetting(value);
    return refuseToStart(`GATEWAY_URL must be a running gateway's http:// or https:// URL, such as http://localhost:4000/graphql (got ${shown})`);
  }
  // Else the start line would print them, and the page could send nothing: fetch() throws on such a URL.
  if (hasCredentials(value)) return refuseToStart('GATEWAY_URL must not carry credentials (user:password@): browsers refuse to fetch a URL with them');
  return value;
}

// `npm run example:frontend`: EXAMPLE_PORT (default 5173), GATEWAY_URL (default: start one here).
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const refusedArguments = argumentsProblem(process.argv.slice(2), 'EXAMPLE_PORT and GATEWAY_URL (examples/frontend/README.md)');
  if (refusedArguments !== undefined) refuseToStart(refusedArguments);
  const logger = createLogger('info');
  const port = examplePort();
  const gatewayUrl = gatewayUrlSetting();
  const example = await startExample({ port, gatewayUrl, logger }).catch((error: unknown) => {
    if (error instanceof CodegenFailed) return refuseToStart(error.message);
    // 5173 is Vite's default port too, so a frontend developer often has it taken: say which variable moves it.
    // The host is fixed (127.0.0.1), so only the port's failures (in use, not allowed) come here.
    const reason = describeListenFailure(error, { host: '127.0.0.1', port, hostVariable: 'host', portVariable: 'EXAMPLE_PORT' });
    if (reason === undefined) throw error;
    return refuseToStart(reason);
  });
  logger.info('example frontend ready', { app: example.url, graphql: example.gatewayUrl, ide: example.gatewayUrl });
  const stop = () => void example.close().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
