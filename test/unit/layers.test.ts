import assert from 'node:assert/strict';
import { builtinModules } from 'node:module';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { projectRoot } from '../../src/support/project-root.ts';

const src = join(projectRoot(), 'src');

/** The `.ts` files of a folder of `src/`, its subfolders included, as paths from `src/`. */
function filesOf(folder: string): string[] {
  return readdirSync(join(src, folder), { recursive: true })
    .map(String)
    .filter((file) => file.endsWith('.ts'))
    .map((file) => join(folder, file));
}

/**
 * The gateway's and the emulator's modules, as paths from `src/`: not the IDE's browser code (bundled at build
 * time, with the development dependencies) nor declaration files (types alone).
 */
function runModules(): string[] {
  return filesOf('.').filter((file) => !file.startsWith('ide/browser/') && !file.endsWith('.d.ts'));
}

/**
 * The module specifiers `text` imports, in every form: `import … from`, `export … from`, a bare `import '…'`
 * (run for its effects) and a dynamic `import('…')`, in either kind of quotes.
 */
function specifiersIn(text: string): string[] {
  const forms = /(?:^(?:import|export)\b[^;]*?\bfrom\s*|^import\s*|\bimport\s*\(\s*)(['"])(.+?)\1/gms;
  return [...text.matchAll(forms)].map(([, , specifier]) => specifier!);
}

/** What a file of `src/` imports: each module specifier, relative ones resolved to a path from `src/`. */
function importsOf(file: string, { typesToo = true } = {}): string[] {
  let text = readFileSync(join(src, file), 'utf8');
  // `import type` and `export type` are erased from the JavaScript (an inline `{ type A }` is not: the module is
  // still loaded).
  if (!typesToo) text = text.replace(/^(?:import|export)\s+type\b[^;]*;/gm, '');
  return specifiersIn(text).map((specifier) => (specifier.startsWith('.') ? relative(src, resolve(dirname(join(src, file)), specifier)) : specifier));
}

/** The cycles of imports that load modules at run time among `files`, each as `a -> b -> … -> a`. */
function runTimeCycles(files: string[]): string[] {
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const cycles: string[] = [];
  const visit = (file: string) => {
    state.set(file, 'open');
    path.push(file);
    for (const imported of importsOf(file, { typesToo: false }).filter((imported) => imported.endsWith('.ts'))) {
      if (state.get(imported) === 'open') cycles.push([...path.slice(path.indexOf(imported)), imported].join(' -> '));
      else if (!state.has(imported)) visit(imported);
    }
    path.pop();
    state.set(file, 'done');
  };
  for (const file of files) if (!state.has(file)) visit(file);
  return cycles;
}

/** The imports of `folder`'s files that `forbidden` picks, as `file -> import`. */
function violations(folder: string, forbidden: (imported: string) => boolean): string[] {
  return filesOf(folder).flatMap((file) => importsOf(file).filter(forbidden).map((imported) => `${file} -> ${imported}`));
}

/**
 * Picks the imports of project modules (relative imports, resolved to a path from `src/` ending in `.ts`) in the
 * folders or files named: not a package of the same name (`graphql`, Node's `http`), imported bare.
 */
const isIn =
  (...prefixes: string[]) =>
  (imported: string) =>
    imported.endsWith('.ts') && prefixes.some((prefix) => imported === prefix || imported.startsWith(`${prefix}/`));

/** The package a bare specifier names: `@scope/name/sub/path` → `@scope/name`, `name/sub` → `name`. */
const packageOf = (specifier: string) => specifier.split('/').slice(0, specifier.startsWith('@') ? 2 : 1).join('/');
const builtin = (specifier: string) => specifier.startsWith('node:') || builtinModules.includes(specifier);

// The README's "Data flows one way: HTTP → Apollo → resolver → loader → upstream client → REST", held to in
// the imports: a layer uses the ones below it, never one above.
describe('the layers of src/', () => {
  it('reads every form of import a file can make', () => {
    const text = [
      "import { a } from './static.ts';",
      'import type {\n  B,\n} from "../double-quoted.ts";',
      "export { c } from './re-exported.ts';",
      "import './for-its-effects.ts';",
      'import "undici";',
      "const late = await import('../dynamic.ts');",
      "const spaced = await import ( \"node:fs\" );",
      "// not imports: an import's mention, 'from' in a string",
    ].join('\n');
    assert.deepEqual(specifiersIn(text), ['./static.ts', '../double-quoted.ts', './re-exported.ts', './for-its-effects.ts', 'undici', '../dynamic.ts', 'node:fs']);
  });

  it('the upstream client and its signing import nothing of the HTTP server, Apollo, the resolvers or the loaders', () => {
    const above = isIn('http', 'graphql', 'resolvers', 'loaders');
    assert.ok(filesOf('upstream').length > 5, 'src/upstream/ has files to check');
    assert.deepEqual([...violations('upstream', above), ...violations('oauth', above)], []);
  });

  it('the GraphQL side (Apollo, the schema, the context) imports nothing of the HTTP server that hands it requests', () => {
    assert.ok(filesOf('graphql').length > 5, 'src/graphql/ has files to check');
    assert.deepEqual(violations('graphql', isIn('http', 'main.ts', 'start.ts')), []);
  });

  it('the loaders import nothing of the HTTP server, Apollo or the resolvers', () => {
    assert.deepEqual(violations('loaders', isIn('http', 'graphql', 'resolvers')), []);
  });

  it('the resolvers reach the upstream only through the loaders: neither the client nor undici', () => {
    assert.ok(filesOf('resolvers').length > 5, 'src/resolvers/ has files to check');
    assert.deepEqual(violations('resolvers', (imported) => imported === 'undici' || isIn('http', 'upstream/client.ts', 'upstream/exchange.ts')(imported)), []);
  });

  it('auth/ and limits/, which the front, the GraphQL side and the loaders consult, import none of those nor each other', () => {
    // Each answers one question (who is calling and what may they reach; what may this operation cost) from
    // what it is given: reaching back into a layer that consults it would make that layer's order of work its own.
    const consulting = ['http', 'resolvers', 'loaders', 'graphql/apollo.ts', 'graphql/schema.ts', 'graphql/context.ts', 'upstream/client.ts', 'upstream/exchange.ts'];
    assert.ok(filesOf('auth').length > 3 && filesOf('limits').length > 3, 'src/auth/ and src/limits/ have files to check');
    assert.deepEqual([...violations('auth', isIn(...consulting, 'graphql', 'limits')), ...violations('limits', isIn(...consulting, 'auth'))], []);
  });

  it('support/ and logging/ stand on nothing of the layers: any layer may use them', () => {
    const project = (imported: string) => imported.endsWith('.ts'); // a relative import, resolved; packages are named bare
    const outside = (folder: string, allowed: string[]) => (imported: string) => project(imported) && !isIn(folder, ...allowed)(imported);
    assert.ok(filesOf('support').length > 5, 'src/support/ has files to check');
    assert.deepEqual([...violations('support', outside('support', [])), ...violations('logging', outside('logging', ['support']))], []);
  });

  it('no module loads, through its imports, one that loads it back: the order of their top levels would depend on which is imported first', () => {
    const files = runModules();
    assert.ok(files.length > 80, `${files.length} modules found`);
    assert.deepEqual(runTimeCycles(files), []);
  });

  it('the emulator stands in for the upstream: it shares the HTTP plumbing, never the gateway\'s GraphQL, auth, limits, loaders or client; only start-up reaches into it', () => {
    const gateway = isIn('graphql', 'resolvers', 'loaders', 'auth', 'limits', 'ide', 'generated', 'errors.ts', 'upstream/client.ts', 'upstream/exchange.ts', 'http/server.ts', 'http/graphql-endpoint.ts');
    assert.ok(filesOf('emulator').length > 5, 'src/emulator/ has files to check');
    assert.deepEqual(violations('emulator', gateway), []);
    const outside = runModules().filter((file) => !file.startsWith('emulator/'));
    const reachingIn = outside.flatMap((file) => importsOf(file).filter(isIn('emulator')).map((imported) => `${file} -> ${imported}`));
    assert.deepEqual(reachingIn.filter((edge) => !edge.startsWith('start.ts ->') && !edge.startsWith('config/index.ts ->')), []);
  });

  it('what src/ loads at run time is a production dependency: a deployment that pruned the development ones still starts', () => {
    const { dependencies } = JSON.parse(readFileSync(join(projectRoot(), 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    const loaded = runModules().flatMap((file) => importsOf(file, { typesToo: false }).filter((imported) => !imported.endsWith('.ts') && !builtin(imported)).map((imported) => `${file} -> ${imported}`));
    assert.ok(loaded.some((edge) => edge.endsWith('-> graphql')), 'src/ loads graphql');
    assert.deepEqual(loaded.filter((edge) => !(packageOf(edge.split(' -> ')[1]!) in dependencies)), []);
  });
});

/** The project's own source files (the folders npm and the build make left out), as paths from its root. */
function projectSources(): string[] {
  const root = projectRoot();
  const made = new Set(['node_modules', 'dist', 'coverage', 'test-results']);
  const walk = (folder: string): string[] =>
    readdirSync(join(root, folder), { withFileTypes: true }).flatMap((entry) => {
      const path = join(folder, entry.name);
      if (entry.isDirectory()) return entry.name.startsWith('.') || made.has(entry.name) ? [] : walk(path);
      return /\.(?:[cm]?js|[cm]?ts|tsx)$/.test(entry.name) ? [path] : [];
    });
  return walk('.');
}

// npm installs every package a dependency needs at the top of node_modules when it can, so a file that imports
// one the project never declared resolves today and fails the day that dependency drops it, or npm nests it
// (another version wanted elsewhere): the IDE's bundle or the example's typecheck broke on a dependency's patch.
/** The packages package.json declares, as dependencies or development ones. */
function declaredPackages(): Set<string> {
  const manifest = JSON.parse(readFileSync(join(projectRoot(), 'package.json'), 'utf8')) as Record<'dependencies' | 'devDependencies', Record<string, string>>;
  return new Set([...Object.keys(manifest.dependencies), ...Object.keys(manifest.devDependencies)]);
}

describe('the packages the project imports', () => {
  it('are each declared in package.json, as a dependency or a development one', () => {
    const declared = declaredPackages();
    const imports = projectSources().flatMap((file) =>
      specifiersIn(readFileSync(join(projectRoot(), file), 'utf8'))
        // A package's name, not a relative path nor a builtin (nor this file's mention of `import('…')` above).
        .filter((specifier) => /^(?:@[a-z0-9][\w.-]*\/)?[a-z0-9][\w.-]*(?:\/|$)/.test(specifier) && !builtin(specifier))
        .map((specifier) => ({ file, name: packageOf(specifier) })),
    );
    assert.ok(imports.some(({ file, name }) => file.startsWith('src/ide/browser/') && name === 'graphiql'), 'the IDE\'s browser code is read, and its import of graphiql found');
    assert.deepEqual(imports.filter(({ name }) => !declared.has(name)).map(({ file, name }) => `${file} -> ${name}`), []);
  });

  // The code generator loads them by name, as an import would: `add` is `@graphql-codegen/add`.
  it('and the plugins and presets of its code generator configurations, likewise', () => {
    const declared = declaredPackages();
    const named = ['codegen.yml', join('examples', 'frontend', 'codegen.yml')].flatMap((file) =>
      codegenPackagesOf(readFileSync(join(projectRoot(), file), 'utf8')).map((found) => ({ file, ...found })),
    );
    assert.ok(named.some(({ name }) => name === 'typescript-resolvers'), 'codegen.yml is read, and its typescript-resolvers plugin found');
    assert.ok(named.some(({ name }) => name === 'client'), 'the example\'s codegen.yml is read, and its client preset found');
    assert.deepEqual(named.filter(({ candidates }) => !candidates.some((candidate) => declared.has(candidate))).map(({ file, name }) => `${file} -> ${name}`), []);
  });
});

/**
 * The plugins (`plugins:` items) and presets (`preset:`) a code generator configuration names, each with the
 * packages GraphQL Code Generator's CLI looks for under that name (its getPluginByName and getPresetByName).
 */
function codegenPackagesOf(yaml: string): Array<{ name: string; candidates: string[] }> {
  const found: Array<{ name: string; candidates: string[] }> = [];
  let pluginsIndent: number | undefined;
  for (const line of yaml.split('\n')) {
    if (/^\s*(?:#|$)/.test(line)) continue;
    const indent = line.search(/\S/);
    if (pluginsIndent !== undefined && indent <= pluginsIndent && !line.trimStart().startsWith('- ')) pluginsIndent = undefined;
    const item = pluginsIndent !== undefined && indent >= pluginsIndent ? /^\s*- ([\w@/.-]+):?\s*$/.exec(line) : null;
    if (item) {
      const name = item[1]!;
      found.push({ name, candidates: [`@graphql-codegen/${name}`, `@graphql-codegen/${name}-template`, `@graphql-codegen/${name}-plugin`, `graphql-codegen-${name}`, name] });
    }
    if (/^\s*plugins:\s*$/.test(line)) pluginsIndent = indent;
    const preset = /^\s*preset:\s*([\w@/.-]+)\s*$/.exec(line);
    if (preset) found.push({ name: preset[1]!, candidates: [`@graphql-codegen/${preset[1]}`, `@graphql-codegen/${preset[1]}-preset`, preset[1]!] });
  }
  return found;
}
