import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { Kind, parse, type OperationDefinitionNode } from 'graphql';
import { loadConfig } from '../../src/config/index.ts';
import { ErrorCode, HttpRefusalCode, OPERATION_CODES } from '../../src/errors.ts';
import { measureOperation } from '../../src/limits/measure.ts';
import { buildSchema } from '../../src/graphql/schema.ts';
import { SETTINGS } from '../../src/config/settings.ts';
import { DEFAULTS } from '../../src/config/defaults.ts';
import { STOP_SIGNALS } from '../../src/support/stop-signals.ts';
import { configProblems } from '../helpers/config.ts';
import { startStack, useStack, type Stack } from '../helpers/stack.ts';

/** What `run` gets from a gateway in front of an emulator holding the demo data (what `npm start` serves), stopped after. */
async function withDemoData<T>(run: (demo: Stack) => Promise<T>): Promise<T> {
  const demo = await startStack({ emulator: { seed: 'demo' } });
  try {
    return await run(demo);
  } finally {
    await demo.close();
  }
}

/** The README's GraphQL examples, so that the documentation stays true to the schema and the gateway. */
const readme = readFileSync('README.md', 'utf8');
const examples = [...readme.matchAll(/```graphql\n([\s\S]*?)```/g)].map((m) => m[1]!);

describe('the README examples', () => {
  const stack = useStack();

  it('has examples to check', () => assert.ok(examples.length >= 3, `${examples.length} GraphQL examples in the README`));

  it('suggests a demo account for the Dashboard example that has what it shows: sources and connect tokens', async () => {
    const id = /with the demo data, `\{"id": "(\w+)"\}`/.exec(readme)?.[1];
    assert.ok(id, 'the README names a demo account for Dashboard');
    const dashboard = examples.find((example) => example.includes('query Dashboard'))!;
    const res = await withDemoData((demo) => demo.gql(dashboard, { id }));
    assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
    const account = res.body.data!['account'] as { sources: unknown[]; connectTokens: unknown[] };
    assert.ok(account.sources.length > 0 && account.connectTokens.length > 0, JSON.stringify(account));
  });

  for (const example of examples) {
    const name = /(query|mutation) (\w+)/.exec(example)?.[2] ?? 'anonymous';
    it(`runs ${name} against the emulator without errors`, async () => {
      const account = stack.emulator.store.createAccount({ email: 'readme@example.com', sources: [{ label: 'readme::imap', status: 'OK' }] });
      const token = stack.emulator.store.createConnectToken(null, { callback_url: 'https://app.example.com/cb' });
      stack.emulator.store.useConnectToken(token.token, { email: 'readme2@example.com' });
      const res = await stack.gql(example, example.includes('$id') ? { id: account.id } : {});
      assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
      assert.ok(res.body.data && Object.values(res.body.data).every((value) => value !== null), 'every root field of the example answers');
    });
  }
});

/** The README's and docs' other concrete claims, checked against the code: a newcomer copies them as they are. */
const documents = ['README.md', 'docs/architecture.md', 'docs/auth.md', 'docs/configuration.md', 'docs/emulator.md', 'docs/errors.md', 'docs/frontend.md', 'docs/limits.md', 'docs/logs.md', 'docs/operations.md', 'docs/soak.md'].map((path) => ({ path, text: readFileSync(path, 'utf8') }));

/** The cells of a Markdown table row (`| a | b |`), trimmed. */
function cells(line: string): string[] {
  return line.slice(1, -1).split(' | ').map((cell) => cell.trim());
}

/** The rows of every table of `text` whose header starts with `header` (its cells as written). */
function tableRows(text: string, header: string): string[][] {
  const rows: string[][] = [];
  let inTable = false;
  for (const line of text.split('\n')) {
    if (line.startsWith(`| ${header} |`)) inTable = true;
    else if (!line.startsWith('|')) inTable = false;
    else if (inTable && !line.startsWith('| ---')) rows.push(cells(line));
  }
  return rows;
}

/** A number as the docs write it: `1048576`, `1 KiB`, `100 MiB`, `10⁹`. */
function documentedNumber(text: string): number {
  const superscripts = '⁰¹²³⁴⁵⁶⁷⁸⁹';
  const power = /^10([⁰¹²³⁴⁵⁶⁷⁸⁹]+)$/.exec(text);
  if (power) return 10 ** Number([...power[1]!].map((digit) => superscripts.indexOf(digit)).join(''));
  const [, digits, unit] = /^(\d+)(?: (KiB|MiB))?$/.exec(text) ?? [];
  assert.ok(digits !== undefined, `a number: ${text}`);
  return Number(digits) * (unit === 'KiB' ? 1024 : unit === 'MiB' ? 1024 * 1024 : 1);
}

describe('the configuration tables of the README and docs', () => {
  const rows = documents.flatMap(({ path, text }) =>
    tableRows(text, 'variable').map(([variable, fallback, meaning]) => ({ path, names: [...variable!.matchAll(/`([A-Z][A-Z0-9_]+|[a-z][a-z0-9_]+)`/g)].map((m) => m[1]!), fallback: fallback!, meaning: meaning! })),
  );

  it('has rows to check, each naming settings', () => {
    assert.ok(rows.length >= 40, `${rows.length} rows of settings in the docs`);
    for (const row of rows) for (const name of row.names) assert.ok((SETTINGS as readonly string[]).includes(name), `${row.path}: ${name} is a setting`);
  });

  it('lists every setting once in the README\'s table and once in docs/configuration.md\'s, as src/config/settings.ts has them', () => {
    for (const path of ['README.md', 'docs/configuration.md']) {
      const named = rows.filter((row) => row.path === path).flatMap((row) => row.names);
      assert.deepEqual([...named].sort(), [...SETTINGS].sort(), `${path}'s configuration tables name each setting once`);
    }
  });

  it('gives each setting the default it has: set to its documented default, the configuration is what it is unset', () => {
    const unset = loadConfig({});
    let checked = 0;
    for (const row of rows) {
      // `4000`, `1048576` (1 MiB), `dev-key` / `dev-secret`; a default in words (`unset`, `on in open mode …`) is not a value.
      const literals = /^`([^`]+)`(?: \/ `([^`]+)`)?(?: \(.*\))?$/.exec(row.fallback)?.slice(1).filter((value) => value !== undefined);
      if (literals === undefined) continue;
      assert.equal(literals.length, row.names.length, `${row.path}: one default for each of ${row.names.join(', ')}`);
      row.names.forEach((name, i) => {
        assert.deepEqual(loadConfig({ [name]: literals[i]! }), unset, `${row.path}: ${name}'s default is ${literals[i]}`);
        checked += 1;
      });
    }
    assert.ok(checked >= 25, `${checked} defaults checked`);
  });

  it('gives each setting the range it accepts: both ends taken, one past either refused naming the setting', () => {
    const ranges = rows.flatMap((row): Array<{ path: string; name: string; min: number | undefined; max: number }> => {
      const found = [...row.meaning.matchAll(/(?<![\w.])(\d+(?: KiB| MiB)?)–(\d+(?: KiB| MiB)?)(?![\w.])/g)];
      const atMost = /at most `(\d+)`/.exec(row.meaning);
      if (found.length === 1) return [{ path: row.path, name: row.names[0]!, min: documentedNumber(found[0]![1]!), max: documentedNumber(found[0]![2]!) }];
      if (atMost) return [{ path: row.path, name: row.names[0]!, min: undefined, max: Number(atMost[1]) }];
      return [];
    });
    // docs/limits.md lists its ranges in a sentence: "Each must be a whole number (`MAX_QUERY_DEPTH` 1–1000, …)".
    const limits = documents.find((document) => document.path === 'docs/limits.md')!.text;
    const sentence = /Each must be a whole number \(([^)]*)\)/.exec(limits.replace(/\n/g, ' '))?.[1];
    assert.ok(sentence, 'docs/limits.md states the limits\' ranges');
    for (const [, name, min, max] of sentence.matchAll(/`([A-Z_]+)` ([^,–]+)–([^,]+)/g)) {
      ranges.push({ path: 'docs/limits.md', name: name!, min: documentedNumber(min!), max: documentedNumber(max!) });
    }
    assert.ok(ranges.length >= 20, `${ranges.length} ranges checked`);
    for (const { path, name, min, max } of ranges) {
      const refused = (value: number) => configProblems({ [name]: String(value) }).some((problem) => problem.startsWith(`${name} `));
      if (min !== undefined) assert.deepEqual(configProblems({ [name]: String(min) }), [], `${path}: ${name}=${min} is taken`);
      if (min !== undefined && min > 0) assert.ok(refused(min - 1), `${path}: ${name}=${min - 1} is refused`);
      assert.deepEqual(configProblems({ [name]: String(max) }), [], `${path}: ${name}=${max} is taken`);
      assert.ok(refused(max + 1), `${path}: ${name}=${max + 1} is refused`);
    }
  });

  it('says MAX_BODY_BYTES_IN_FLIGHT goes as low as MAX_BODY_BYTES, whatever that is', () => {
    const row = rows.find((candidate) => candidate.names[0] === 'MAX_BODY_BYTES_IN_FLIGHT');
    assert.ok(row, 'the README has a row for MAX_BODY_BYTES_IN_FLIGHT');
    assert.match(row.meaning, /at least `MAX_BODY_BYTES`/i);
    // MAX_BODY_BYTES at its lowest, 1 KiB: a cap of one such body is taken.
    assert.deepEqual(configProblems({ MAX_BODY_BYTES: '1024', MAX_BODY_BYTES_IN_FLIGHT: '1024' }), []);
    const range = /(?<![\w.])(\d+(?: KiB| MiB)?)–/.exec(row.meaning);
    assert.ok(range === null || documentedNumber(range[1]!) <= 1024, `${row.path}: its range begins at ${range?.[1]}, yet 1024 is taken beside MAX_BODY_BYTES=1024`);
  });
});

describe('the README and docs name what exists', () => {
  it('names only npm scripts of package.json', () => {
    const scripts = (JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> }).scripts;
    let checked = 0;
    for (const { path, text } of documents) {
      for (const [, script] of text.matchAll(/npm run (?:-s )?([a-z][a-z:-]*)/g)) {
        assert.ok(script! in scripts, `${path}: npm run ${script}`);
        checked += 1;
      }
    }
    // Counted, so that a pattern that no longer matches the documents fails rather than checks nothing.
    assert.ok(checked >= 20, `${checked} npm scripts checked`);
  });

  it('gives npm run token and npm run soak only options they take', () => {
    const optionsOf = { token: readFileSync('scripts/token.ts', 'utf8'), soak: readFileSync('scripts/soak/settings.ts', 'utf8') };
    let checked = 0;
    for (const { path, text } of documents) {
      for (const [, script, args] of text.matchAll(/npm run (?:-s )?(token|soak) -- ([^`)\n]*)/g)) {
        for (const [, option] of args!.matchAll(/--([a-z][a-z-]*)/g)) {
          // Declared in the script's parseArgs options as `name: { type: … }` or `'name': { type: … }`.
          assert.match(optionsOf[script as 'token' | 'soak'], new RegExp(`(^|\\s)'?${option}'?: \\{ type:`, 'm'), `${path}: npm run ${script} -- --${option}`);
          checked += 1;
        }
      }
    }
    assert.ok(checked >= 8, `${checked} options checked`);
  });

  it('names only files and folders of the repository', () => {
    let links = 0;
    let paths = 0;
    for (const { path, text } of documents) {
      const folder = dirname(path);
      // Markdown links to files of the repository, relative to the document.
      for (const [, target] of text.matchAll(/\]\(((?!https?:|#)[^)#\s]+)(?:#[^)]*)?\)/g)) {
        assert.ok(existsSync(join(folder, target!)), `${path}: link to ${target}`);
        links += 1;
      }
      // Paths spelt out from the repository's root.
      for (const [, named] of text.matchAll(/`((?:src|test|scripts|docs|bench|examples|releases|schema)\/[\w./-]*)`/g)) {
        // docs/frontend.md's `src/gql/` and `src/client.ts` are the frontend's own (examples/frontend/ for the example).
        if (path === 'docs/frontend.md' && named!.startsWith('src/')) continue;
        assert.ok(existsSync(named!), `${path}: ${named}`);
        paths += 1;
      }
    }
    assert.ok(links >= 20 && paths >= 40, `${links} links and ${paths} paths checked`);
  });

  it('links only to headings that exist, as GitHub names their anchors', () => {
    /** The anchors GitHub gives the headings of a Markdown text: lower case, punctuation dropped, spaces as `-`, a repeat numbered. */
    const anchors = (text: string) => {
      const seen = new Map<string, number>();
      const found = new Set<string>();
      for (const [, heading] of text.replace(/```[\s\S]*?```/g, '').matchAll(/^#{1,6} +(.+)$/gm)) {
        const slug = heading!.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
        const repeats = seen.get(slug);
        seen.set(slug, (repeats ?? -1) + 1);
        found.add(repeats === undefined ? slug : `${slug}-${repeats + 1}`);
      }
      return found;
    };
    let checked = 0;
    for (const { path, text } of [...documents, ...['bench/README.md', 'examples/frontend/README.md'].map((other) => ({ path: other, text: readFileSync(other, 'utf8') }))]) {
      for (const [, target, anchor] of text.replace(/```[\s\S]*?```/g, '').matchAll(/\]\(((?!https?:)[^)#\s]*)#([^)\s]+)\)/g)) {
        const file = target === '' ? path : join(dirname(path), target!);
        assert.ok(anchors(readFileSync(file, 'utf8')).has(decodeURIComponent(anchor!)), `${path}: link to ${target}#${anchor}: no such heading in ${file}`);
        checked += 1;
      }
    }
    assert.ok(checked >= 20, `${checked} links to headings checked`);
  });

  it('names in each row of "How it is built" (the README\'s and docs/architecture.md\'s) files of that row\'s folder', () => {
    const rows = [readme, readFileSync('docs/architecture.md', 'utf8')].flatMap((text) => tableRows(text, 'folder'));
    assert.ok(rows.length >= 20, `${rows.length} rows of folders`);
    let checked = 0;
    for (const [what, description] of rows) {
      const folder = /^`([\w/]+\/)`$/.exec(what!)?.[1];
      if (folder === undefined) continue;
      for (const [, file] of description!.matchAll(/`([\w-]+\.(?:ts|mjs))`/g)) {
        assert.ok(existsSync(join(folder, file!)), `${folder}${file}`);
        checked += 1;
      }
    }
    assert.ok(checked >= 20, `${checked} files checked`);
  });

  it('names in docs/architecture.md every source file of src/, in its folder\'s row or section or by its path', () => {
    const architecture = readFileSync('docs/architecture.md', 'utf8');
    // What each folder's row of the table says, and the files of its own section's table (`## \`src/limits/\`` …).
    const rows = new Map(tableRows(architecture, 'folder').map(([what, description]) => [what!, description!]));
    const sectionFiles = new Map<string, string[]>();
    for (const section of architecture.split(/^(?=## )/m)) {
      const folder = /^## `(src\/[\w/]+\/)`/.exec(section)?.[1];
      if (folder === undefined) continue;
      const files = tableRows(section, 'file').map(([file]) => /^`([\w.-]+)`$/.exec(file!)?.[1] ?? file!);
      for (const file of files) assert.ok(existsSync(join(folder, file)), `docs/architecture.md's ${folder} section: ${file}`);
      sectionFiles.set(folder, files);
    }
    // The IDE's browser bundle has its own tsconfig and build, named as a folder; the generated types as one too.
    const sources = (readdirSync('src', { recursive: true }) as string[])
      .filter((file) => file.endsWith('.ts') && !file.startsWith('generated/') && !file.startsWith('ide/browser/'))
      .sort();
    assert.ok(sources.length >= 80, `${sources.length} source files`);
    const unnamed = sources.filter((file) => {
      const folder = `src/${dirname(file)}/`;
      const name = basename(file);
      return !architecture.includes(`\`src/${file}\``) && !rows.get(`\`${folder}\``)?.includes(`\`${name}\``) && !sectionFiles.get(folder)?.includes(name);
    });
    assert.deepEqual(unnamed, [], 'source files docs/architecture.md does not name');
  });

  it('gives only error codes a client can get', () => {
    const known = new Set<string>([...Object.values(ErrorCode), ...Object.values(HttpRefusalCode), ...OPERATION_CODES]);
    let checked = 0;
    for (const { path, text } of documents) {
      for (const header of ['code', 'request']) {
        for (const row of tableRows(text, header)) {
          const code = header === 'code' ? row[0] : row[2];
          const name = /^`([A-Z_]+)`$/.exec(code ?? '')?.[1];
          if (name === undefined) continue;
          assert.ok(known.has(name), `${path}: ${name}`);
          checked += 1;
        }
      }
    }
    assert.ok(checked >= 30, `${checked} error codes checked`);
  });

  it('gives every error code the gateway raises or passes on from Apollo in docs/errors.md, which says it lists them all', () => {
    const errors = documents.find((document) => document.path === 'docs/errors.md')!.text;
    const documented = new Set([...tableRows(errors, 'code').map((row) => row[0]), ...tableRows(errors, 'request').map((row) => row[2])]);
    const raised = [...Object.values(ErrorCode), ...Object.values(HttpRefusalCode), ...OPERATION_CODES];
    assert.deepEqual(
      raised.filter((code) => !documented.has(`\`${code}\``)),
      [],
      'codes of src/errors.ts with no row in docs/errors.md: a client branches on each, and needs to know when it comes',
    );
  });

  it('gives in docs/errors.md every HTTP status and code of docs/limits.md\'s table of HTTP refusals', () => {
    const text = (path: string) => documents.find((document) => document.path === path)!.text;
    // docs/errors.md's table of errors that end the request: code | HTTP | when (its field errors' table has no status).
    const answered = new Set(tableRows(text('docs/errors.md'), 'code').filter((row) => /^\d{3}$/.test(row[1] ?? '')).map((row) => `${row[1]} ${row[0]}`));
    // docs/limits.md's: request | status | code | message (a row of no answer, such as the stall cut, has `—`).
    const refusals = tableRows(text('docs/limits.md'), 'request').filter((row) => /^\d{3}$/.test(row[1] ?? '')).map((row) => `${row[1]} ${row[2]}`);
    assert.ok(refusals.length >= 30 && answered.size >= 20, `${refusals.length} refusals of docs/limits.md, ${answered.size} statuses and codes of docs/errors.md`);
    assert.deepEqual([...new Set(refusals.filter((refusal) => !answered.has(refusal)))], [], 'statuses and codes docs/limits.md gives that docs/errors.md, which lists every error, lacks');
  });

  // A signal added to STOP_SIGNALS (SIGUSR2 was) left the lists written before it one short.
  it('names every stop signal beyond SIGTERM and SIGINT wherever it lists them', () => {
    const others = STOP_SIGNALS.filter((signal) => signal !== 'SIGTERM' && signal !== 'SIGINT');
    let lists = 0;
    for (const { path, text } of documents) {
      // A paragraph, or a row of a table.
      for (const passage of text.split(/\n\s*\n/).flatMap((block) => (block.startsWith('|') ? block.split('\n') : [block]))) {
        const named = others.filter((signal) => passage.includes(signal));
        if (named.length < 2) continue;
        lists += 1;
        assert.deepEqual(others.filter((signal) => !named.includes(signal)), [], `${path}: ${passage.slice(0, 200)}`);
      }
    }
    assert.ok(lists >= 5, `${lists} lists of stop signals checked`);
  });

  it('gives the deadlines that are no setting as the gateway has them: a request’s arrival, an answer’s stall', () => {
    const text = (path: string) => documents.find((document) => document.path === path)!.text;
    /** The durations `pattern` finds in `path`, its number in units of `unitMs`, in milliseconds. */
    const durations = (pattern: RegExp, path: string, unitMs: number) => [...text(path).matchAll(pattern)].map((match) => Number(match[1]) * unitMs);
    const arrival = [...durations(/did not all arrive within (\d+) s/g, 'docs/errors.md', 1000), ...durations(/not all arrived (\d+) s after it began/g, 'docs/limits.md', 1000)];
    assert.deepEqual(arrival, [DEFAULTS.requestReceiveTimeoutMs, DEFAULTS.requestReceiveTimeoutMs], 'docs/errors.md and docs/limits.md give the time a request has to arrive');
    const stall = [
      ...durations(/takes none of for (\d+) minutes/g, 'docs/limits.md', 60_000),
      ...durations(/took none of the answer for (\d+) minutes/g, 'docs/logs.md', 60_000),
      ...durations(/stalling \((\d+) minutes without taking any\)/g, 'docs/configuration.md', 60_000),
    ];
    assert.deepEqual(stall, [DEFAULTS.answerStallTimeoutMs, DEFAULTS.answerStallTimeoutMs, DEFAULTS.answerStallTimeoutMs], 'docs/limits.md, docs/logs.md and docs/configuration.md give the time an answer may wait for its client');
  });
});

describe("docs/operations.md's runbook", () => {
  /** Every source file's text: a line the runbook quotes must be one the gateway writes. */
  const sources = (readdirSync('src', { recursive: true }) as string[])
    .filter((file) => file.endsWith('.ts'))
    .map((file) => readFileSync(join('src', file), 'utf8'))
    .join('\n');

  it('quotes as the line to alert on for each incident only messages the gateway writes, as written', () => {
    const rows = tableRows(documents.find((document) => document.path === 'docs/operations.md')!.text, 'incident');
    assert.ok(rows.length >= 10, `${rows.length} incidents in the runbook`);
    let checked = 0;
    for (const [incident, lines] of rows) {
      // A message is quoted whole, or up to where it varies (`…`); a field and its value (`sent: true`) are no message.
      for (const [, quoted] of lines!.matchAll(/`([^`]+)`/g)) {
        if (quoted!.split(' ').length < 3) continue;
        // V8's own, which the gateway cannot write (its heap is gone): the runbook says so.
        if (quoted!.startsWith('FATAL ERROR: ') && lines!.startsWith('none of the gateway')) continue;
        for (const part of quoted!.split('…').map((piece) => piece.trim()).filter((piece) => piece !== '')) {
          assert.ok(sources.includes(part), `docs/operations.md's runbook, ${incident}: "${part}" is in no source file (a line renamed?)`);
          checked += 1;
        }
      }
    }
    assert.ok(checked >= 15, `${checked} quoted messages checked`);
  });
});

describe('the README quick start', () => {
  it('answers its curl example with the demo data as the README shows, on one line', async () => {
    const quickStart = readme.slice(readme.indexOf('## Quick start'));
    const payload = /curl -s http:\/\/127\.0\.0\.1:4000\/graphql [^\n]*\\\n\s*-d '([^']+)'/.exec(quickStart)?.[1];
    const shown = /```json\n(.*)\n```/.exec(quickStart)?.[1];
    assert.ok(payload && shown, 'the quick start has a curl example and its answer');
    const { query } = JSON.parse(payload) as { query: string };
    assert.equal(JSON.stringify((await withDemoData((demo) => demo.gql(query))).body), shown);
  });
});

describe('the README errors', () => {
  it('answers its example of a field error with the demo data as the README shows', async () => {
    const errors = readme.slice(readme.indexOf('## Errors'));
    const [, query, shown] = /For `(\{[^`]+\})`,\nthe demo data answers:\n\n```json\n([\s\S]*?)```/.exec(errors) ?? [];
    assert.ok(query && shown, 'the Errors section has an example query and its answer');
    assert.deepEqual((await withDemoData((demo) => demo.gql(query))).body, JSON.parse(shown));
  });
});

describe('docs/limits.md', () => {
  it('gives each example of its cost table the cost the gateway estimates', () => {
    const limits = documents.find((document) => document.path === 'docs/limits.md')!.text;
    const schema = buildSchema();
    const rows = tableRows(limits, 'operation');
    assert.ok(rows.length >= 5, `${rows.length} rows in the cost table`);
    for (const [operation, cost] of rows) {
      const query = /^`(.*)`$/.exec(operation!)![1]!;
      // `10 + 1 + … = 23`, `22,111: refused`, `counted as \`first: 100\`, 2,111; then …`
      const stated = cost!.includes('=') ? cost!.slice(cost!.lastIndexOf('=') + 1) : cost!.replace(/`[^`]*`/g, '');
      const figure = Number(/\d[\d,]*/.exec(stated)![0].replace(/,/g, ''));
      const document = parse(query);
      const definition = document.definitions.find((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION)!;
      assert.equal(measureOperation(schema, document, definition, {}).cost, figure, query);
    }
  });
});
