// Bundles the GraphQL IDE (GraphiQL + React + Monaco and its web workers) into dist/ide/, which the gateway
// serves under /graphql/ide/. Everything the page needs ends up in that folder, so the IDE works offline;
// the build fails if a bundle would load anything from another origin.
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = join(root, 'dist', 'ide');
// Monaco and its GraphQL mode are @graphiql/react's dependencies, not the project's: their workers are found
// as @graphiql/react finds them, so that they are those of the Monaco the app bundle runs, wherever npm put it
// (found from here, they resolved only while npm hoisted them, and would be another version's once nested).
const resolveFrom = createRequire(import.meta.resolve('@graphiql/react')).resolve;

rmSync(outdir, { recursive: true, force: true });
mkdirSync(outdir, { recursive: true });

const common = {
  bundle: true,
  minify: true,
  sourcemap: false,
  target: ['chrome111', 'firefox111', 'safari16.4'],
  legalComments: 'none',
  logLevel: 'warning',
  // Content-hashed names: the gateway can then let browsers cache the assets for good, and a rebuild can
  // never mix an old app with new workers.
  entryNames: '[name]-[hash]',
  metafile: true,
  define: { 'process.env.NODE_ENV': '"production"' },
  // Fonts and images that CSS refers to are inlined: no file the page would fetch from elsewhere.
  loader: { '.ttf': 'dataurl', '.woff': 'dataurl', '.woff2': 'dataurl', '.svg': 'dataurl', '.png': 'dataurl' },
};

const results = await Promise.all([
  build({
    ...common,
    entryPoints: { app: join(root, 'src', 'ide', 'browser', 'main.tsx') },
    outdir,
    format: 'esm',
    jsx: 'automatic',
  }),
  // Monaco's workers, each a self-contained classic script, located by MonacoEnvironment.getWorker.
  build({
    ...common,
    entryPoints: {
      'editor.worker': resolveFrom('monaco-editor/esm/vs/editor/editor.worker.js'),
      'json.worker': resolveFrom('monaco-editor/esm/vs/language/json/json.worker.js'),
      'graphql.worker': resolveFrom('monaco-graphql/esm/graphql.worker.js'),
    },
    outdir,
    format: 'iife',
  }),
]);

// A bundle may mention URLs in strings (licences, docs links); what must not exist is anything that would
// make the browser load code, styles or fonts from another origin.
const remoteLoad = [
  /@import\s+(?:url\()?\s*["']?https?:/i,
  /url\(\s*["']?https?:/i,
  /importScripts\(\s*["']https?:/i,
  /\bimport\(\s*["']https?:/i,
  /from\s*["']https?:/i,
  /<script[^>]+src=["']https?:/i,
  /<link[^>]+href=["']https?:/i,
];
const files = readdirSync(outdir);
for (const name of files) {
  const text = readFileSync(join(outdir, name), 'utf8');
  for (const pattern of remoteLoad) {
    const match = pattern.exec(text);
    if (match) {
      console.error(`build-ide: ${name} would load from another origin (${match[0]}…); the IDE must work offline`);
      process.exit(1);
    }
  }
}
// logical name (what the page asks for) -> hashed file name
const assets = {};
for (const result of results) {
  for (const [path, output] of Object.entries(result.metafile.outputs)) {
    const file = path.split('/').pop();
    const entry = output.entryPoint ?? output.cssBundle;
    const logical = file.replace(/-[A-Z0-9]{8}(\.\w+)$/, '$1');
    if (entry !== undefined || file.endsWith('.css')) assets[logical] = file;
  }
}
for (const needed of ['app.js', 'app.css', 'editor.worker.js', 'json.worker.js', 'graphql.worker.js']) {
  if (!assets[needed]) {
    console.error(`build-ide: ${needed} was not produced`);
    process.exit(1);
  }
}
// Compressed once here rather than on every request: app.js is several megabytes (Monaco).
for (const file of Object.values(assets)) {
  writeFileSync(join(outdir, file + '.gz'), gzipSync(readFileSync(join(outdir, file)), { level: 9 }));
}
// Written last: the gateway serves the IDE only once this exists, so a half-built folder answers 503.
writeFileSync(join(outdir, 'manifest.json'), JSON.stringify({ assets }, null, 2) + '\n');
console.log(`build-ide: ${Object.keys(assets).length} assets in ${outdir}`);
