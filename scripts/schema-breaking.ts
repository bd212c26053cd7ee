// `npm run schema:breaking` (in `npm test`): compares the schema in schema/*.graphql with the last released
// one (the highest version in releases/*.graphql) and fails on a breaking change that is not marked as
// intended in releases/ACCEPTED_BREAKING_CHANGES.md. Breaking changes break deployed frontends and
// consumers' generated clients, so each must be a decision, recorded where the changelog is written from.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { isAbsolute, join, relative } from 'node:path';
import { diff, CriticalityLevel, type Change } from '@graphql-inspector/core';
import { isEnumType, isInputObjectType, isInterfaceType, isObjectType } from 'graphql';
import { projectRoot } from '../src/support/project-root.ts';
import { currentSchema, releasedSchema, scriptOptions } from './schema-source.ts';

const root = projectRoot();
// `--releases <dir>` is for the script's own tests; the project's baseline is releases/.
const USAGE = 'usage: npm run schema:breaking (exits 1 on a breaking change not accepted in releases/ACCEPTED_BREAKING_CHANGES.md)';
const releasesDir = scriptOptions('schema:breaking', USAGE, { releases: { type: 'string' } }).releases ?? join(root, 'releases');
const acceptedFile = join(releasesDir, 'ACCEPTED_BREAKING_CHANGES.md');

let releaseFiles: string[];
try {
  releaseFiles = readdirSync(releasesDir);
} catch (error) {
  console.error(`schema:breaking: cannot read the releases folder ${releasesDir}: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
const releases = releaseFiles
  .map((name) => /^(\d+)\.(\d+)\.(\d+)\.graphql$/.exec(name))
  .filter((match) => match !== null)
  .sort((a, b) => Number(a[1]) - Number(b[1]) || Number(a[2]) - Number(b[2]) || Number(a[3]) - Number(b[3]));
const last = releases.at(-1);
if (!last) {
  console.error('schema:breaking: no releases/<version>.graphql to compare with');
  process.exit(1);
}
const lastVersion = `${last[1]}.${last[2]}.${last[3]}`;

const releasePath = join(releasesDir, last[0]);
// Named in a fault as schema/'s files are, from the project's folder (`releases/0.1.0.graphql`); another folder, whole.
const releaseInProject = relative(root, releasePath);
const releaseFile = releaseInProject.startsWith('..') || isAbsolute(releaseInProject) ? releasePath : releaseInProject;
const released = releasedSchema(releasePath, releaseFile, 'schema:breaking');
const current = currentSchema('schema:breaking');
const changes = await diff(released, current);

/** An accepted change is a list item starting with its id in backticks: `` - `FIELD_REMOVED Account.username` — why ``. */
const idOf = (change: Change) => `${change.type} ${change.path ?? ''}`.trim();
const acceptedSection = `## Since ${lastVersion}`;
/**
 * The ids listed under `## Since <last release>` only: the file's other lists (its how-to's example, the
 * behaviour changes) also start with backticks, and must not accept the breaks they merely name.
 */
function acceptedIds(markdown: string): Set<string> {
  const ids = new Set<string>();
  let inSection = false;
  for (const line of markdown.split('\n')) {
    if (line.startsWith('#')) inSection = line.trim() === acceptedSection;
    const id = inSection ? /^\s*[-*]\s+`([^`]+)`/.exec(line)?.[1]?.trim() : undefined;
    if (id !== undefined) ids.add(id);
  }
  return ids;
}
// Missing (deleted on a release, where its list was to be emptied), nothing is accepted: a break then names the file to add.
const accepted = existsSync(acceptedFile) ? acceptedIds(readFileSync(acceptedFile, 'utf8')) : new Set<string>();

const breaking = changes.filter((change) => change.criticality.level === CriticalityLevel.Breaking);
const dangerous = changes.filter((change) => change.criticality.level === CriticalityLevel.Dangerous);
const unmarked = breaking.filter((change) => !accepted.has(idOf(change)));

for (const change of dangerous) console.log(`schema:breaking: dangerous (allowed): ${change.message}`);
for (const change of breaking.filter((c) => accepted.has(idOf(c)))) {
  console.log(`schema:breaking: breaking, accepted in releases/ACCEPTED_BREAKING_CHANGES.md: ${change.message}`);
}
/**
 * Whether `change` removes a field, an input field or an enum value the release had deprecated: the break its
 * deprecation announced, for which "deprecate it instead" is no advice.
 */
function removesDeprecated(change: Change): boolean {
  if (!change.type.endsWith('_REMOVED')) return false;
  const [typeName, member, ...rest] = (change.path ?? '').split('.');
  const type = typeName === undefined ? undefined : released.getType(typeName);
  if (member === undefined || rest.length > 0 || type === undefined) return false;
  if (isObjectType(type) || isInterfaceType(type) || isInputObjectType(type)) return type.getFields()[member]?.deprecationReason != null;
  if (isEnumType(type)) return type.getValue(member)?.deprecationReason != null;
  return false;
}

if (unmarked.length > 0) {
  console.error(`schema:breaking: ${unmarked.length} breaking change(s) since the ${lastVersion} release:`);
  for (const change of unmarked) {
    const deprecated = removesDeprecated(change) ? `, deprecated in ${lastVersion}` : '';
    console.error(`  ${change.message}${change.criticality.reason ? ` (${change.criticality.reason})` : ''}${deprecated}`);
  }
  if (unmarked.every(removesDeprecated)) {
    console.error(`Each was deprecated in ${lastVersion}: its removal is the break the deprecation announced. Once consumers no longer use it, add under`);
  } else {
    console.error('Keep the old field/type/value (deprecate it instead), or, if the break is intended, add under');
  }
  console.error(`\`${acceptedSection}\` in releases/ACCEPTED_BREAKING_CHANGES.md, with a line saying why and what consumers should do:`);
  for (const change of unmarked) console.error(`  - \`${idOf(change)}\` — <why, and what consumers do instead>`);
  process.exit(1);
}
console.log(
  `schema:breaking: no unmarked breaking change since ${lastVersion} (${changes.length} change(s), ${breaking.length} accepted breaking, ${dangerous.length} dangerous).`,
);
