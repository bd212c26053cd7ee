import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { shownSetting } from '../support/shortened.ts';

/**
 * Every environment variable the gateway and its emulator read (the README's configuration tables), and the
 * prefixes they own. A variable under one of those prefixes that is not a setting is a typo the gateway
 * would otherwise ignore in silence: `AUTH_JWT_SECRETS=…` would start it with authentication off.
 */
export const SETTINGS = [
  'PORT',
  'HOST',
  'LOG_LEVEL',
  'NODE_ENV',
  'INTROSPECTION',
  'IDE',
  'CORS_ORIGINS',
  'CONTEXTIO_API_URL',
  'CONTEXTIO_CONSUMER_KEY',
  'CONTEXTIO_CONSUMER_SECRET',
  // The conventional egress proxy variables, both spellings: curl and Go read either (`NO_PROXY`'s too).
  'HTTPS_PROXY',
  'https_proxy',
  'HTTP_PROXY',
  'http_proxy',
  'NO_PROXY',
  'no_proxy',
  'UPSTREAM_TIMEOUT_MS',
  'UPSTREAM_MAX_IN_FLIGHT',
  'OPERATION_TIMEOUT_MS',
  'SHUTDOWN_GRACE_MS',
  'SHUTDOWN_DRAIN_MS',
  'KEEP_ALIVE_TIMEOUT_MS',
  'BREAKER_FAILURE_THRESHOLD',
  'BREAKER_COOLDOWN_MS',
  'CALLER_WRITES_PER_HOUR',
  'CALLER_READS_PER_HOUR',
  'MAX_BODY_BYTES',
  'MAX_ANSWER_BYTES',
  'MAX_OPERATIONS_IN_FLIGHT',
  'MAX_BODY_BYTES_IN_FLIGHT',
  'MAX_ANSWER_BYTES_IN_FLIGHT',
  'MAX_QUERY_DEPTH',
  'MAX_ALIASES',
  'MAX_ROOT_FIELDS',
  'MAX_QUERY_COST',
  'MAX_QUERY_TOKENS',
  'AUTH_JWT_SECRET',
  'AUTH_JWKS_URL',
  'AUTH_ISSUER',
  'AUTH_AUDIENCE',
  'EMULATOR_PORT',
  'EMULATOR_HOST',
  'EMULATOR_PUBLIC_URL',
  'EMULATOR_ALLOWED_HOSTS',
  'EMULATOR_CONSUMER_KEY',
  'EMULATOR_CONSUMER_SECRET',
  'EMULATOR_SEED',
  'EMULATOR_DATA_FILE',
  'EMULATOR_RATE_LIMIT',
] as const;

// `INTROSPECT`: INTROSPECTION has no prefix of its own, and `INTROSPECTIONS=true` would go unsaid (no other
// program's variable starts so). The other lone settings (PORT, HOST, NODE_ENV) are too common to guess typos of.
const OWN_PREFIXES = ['AUTH_', 'CONTEXTIO_', 'EMULATOR_', 'UPSTREAM_', 'OPERATION_', 'SHUTDOWN_', 'KEEP_ALIVE_', 'BREAKER_', 'CALLER_', 'MAX_', 'CORS_', 'LOG_', 'INTROSPECT'];

/**
 * One line for each variable of `env` under the prefixes above (in any case) that is no setting, naming the
 * closest setting when one is a few letters away (or the same in another case: `auth_jwt_secret`). `only`: the
 * prefixes to look at (the emulator on its own reads its own only).
 */
export function unknownSettings(env: Record<string, string | undefined>, only: readonly string[] = OWN_PREFIXES): string[] {
  const known = new Set<string>(SETTINGS);
  const lines: string[] = [];
  for (const name of Object.keys(env).sort()) {
    // In any case: the environment's names are case-sensitive, so `auth_jwt_secret` is no setting either.
    const upper = name.toUpperCase();
    if (known.has(name) || !only.some((prefix) => upper.startsWith(prefix))) continue;
    const closest = closestSettings(upper);
    lines.push(`${name} is not a setting and is ignored${closest.length === 0 ? '' : ` (did you mean ${closest.join(' or ')}?)`}`);
  }
  return lines;
}

/**
 * The line saying that the embedded emulator's settings set in `env` are ignored, since `CONTEXTIO_API_URL`
 * names another upstream (the emulator does not run); `undefined` when none is set. Left from a development
 * `.env`, an `EMULATOR_DATA_FILE` or `EMULATOR_PORT` would otherwise seem to be in force.
 */
export function ignoredEmulatorSettings(env: Record<string, string | undefined>): string | undefined {
  const set = SETTINGS.filter((name) => name.startsWith('EMULATOR_') && (env[name] ?? '').trim() !== '');
  if (set.length === 0) return undefined;
  return `${set.join(', ')} ${set.length === 1 ? 'is' : 'are'} ignored: CONTEXTIO_API_URL is set, so the embedded emulator does not run`;
}

/**
 * What keeps Node from loading `NODE_EXTRA_CA_CERTS` (a PEM file of certificates it reads as the process starts), or
 * undefined: unset, or a file holding a certificate. Node says it only in a line of plain text among the JSON log
 * lines, and starts all the same, trusting none of it: every call to an upstream (or egress proxy, or key set) its
 * authority signs for then fails as a certificate refused. Never the file's contents.
 */
export function extraCertificatesProblem(env: Record<string, string | undefined>): string | undefined {
  const file = env['NODE_EXTRA_CA_CERTS'];
  if (file === undefined || file === '') return undefined;
  let text: string;
  try {
    text = readFileSync(file, 'latin1');
  } catch (error) {
    return `NODE_EXTRA_CA_CERTS could not be read (${(error as NodeJS.ErrnoException).code ?? 'no code'}): Node trusts no authority of it, so a certificate it signs is refused`;
  }
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
  const parses = (block: string) => {
    try {
      new X509Certificate(block);
      return true;
    } catch {
      return false;
    }
  };
  if (blocks.some(parses)) return undefined;
  return 'NODE_EXTRA_CA_CERTS holds no PEM certificate Node can load: Node trusts no authority of it, so a certificate it signs is refused';
}

/**
 * The exit code of a start refused for its settings (a variable's value, an argument): sysexits' EX_CONFIG, which a
 * supervisor can tell from 1, a start that failed for its surroundings (a port taken, too few open files) and may
 * succeed when tried again. systemd's `RestartPreventExitStatus=78` stops retrying what only an edit will fix.
 */
export const SETTINGS_REFUSED_EXIT_CODE = 78;

/**
 * The problem of a command set through the environment alone (`npm start`, `npm run emulator`) given `args`, or
 * undefined when it was given none: an argument (`-- --port 5000`) was ignored, and the command ran where the
 * caller had not asked. `settings` names what sets it instead.
 */
export function argumentsProblem(args: readonly string[], settings: string): string | undefined {
  if (args.length === 0) return undefined;
  return `takes no arguments (got ${args.map(shownArgument).join(' ')}): it is set through the environment, ${settings}`;
}

/**
 * An argument as a refusal of it quotes it: a `NAME=value` one without its value (`AUTH_JWT_SECRET=…`, `--secret=…`),
 * for a setting written where the environment was meant may be a secret; one holding an `@` (a URL's credentials) not
 * at all, as a setting's value is not (`shownSetting`).
 */
function shownArgument(arg: string): string {
  const equals = arg.indexOf('=');
  return equals !== -1 ? shownSetting(`${arg.slice(0, equals + 1)}…`) : shownSetting(arg);
}

/**
 * What is wrong with `value` as the interface `name` names to listen on (HOST, EMULATOR_HOST), or undefined: an IP
 * address or a host name, nothing more. A port or scheme written in (`127.0.0.1:4000`) would otherwise be refused as
 * no loopback address in open mode, asking for authentication, and with it as a name that does not resolve.
 */
export function listenHostProblem(name: string, portName: string, value: string): string | undefined {
  if (isIP(value) !== 0 || /^[A-Za-z0-9_.-]+$/.test(value)) return undefined;
  return `${name} must be an IP address or a host name to listen on, without a scheme, port, path or brackets (${portName} sets the port) (got ${shownSetting(value)})`;
}

/**
 * Whether the upstream's base URL ends in an API version (`…/2.0`, `…/2`, `…/v2`): Context.IO serves its API under
 * its version, and without it every call answers 404 (a proxy may rewrite it, so a warning, not a refusal).
 */
export function namesApiVersion(baseUrl: string): boolean {
  return /\/v?\d+(\.\d+)*$/i.test(new URL(baseUrl).pathname);
}

/**
 * The settings spelt most like `name`, within a fifth of its letters (at least 2) of edits: each of them when two
 * are as close (`EMULATOR_HORT`: `EMULATOR_PORT` or `EMULATOR_HOST`), where naming the first would be a guess;
 * else the one setting that has all of `name`'s words in their order with some left out (`MAX_DEPTH`:
 * `MAX_QUERY_DEPTH`, `BREAKER_THRESHOLD`: `BREAKER_FAILURE_THRESHOLD`, `CALLER_WRITES`: `CALLER_WRITES_PER_HOUR`),
 * when only one does. In the table's order.
 */
function closestSettings(name: string): string[] {
  let closest: string[] = [];
  let least = Infinity;
  for (const setting of SETTINGS) {
    const distance = editDistance(name, setting);
    if (distance > Math.max(2, Math.floor(setting.length / 5)) || distance > least) continue;
    if (distance < least) closest = [];
    least = distance;
    closest.push(setting);
  }
  if (closest.length > 0) return closest;
  const words = name.split('_');
  if (words.length < 2 || words.includes('')) return [];
  const holding = SETTINGS.filter((setting) => hasWordsInOrder(setting.split('_'), words));
  return holding.length === 1 ? holding : [];
}

/** Whether `words` appear in `setting`'s words in the same order (others may come between and after). */
function hasWordsInOrder(settingWords: readonly string[], words: readonly string[]): boolean {
  let next = 0;
  for (const word of settingWords) if (word === words[next]) next += 1;
  return next === words.length;
}

/** Levenshtein distance: insertions, deletions and substitutions. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i += 1) {
    const current = [i];
    for (let j = 1; j <= b.length; j += 1) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}

/**
 * A whole-number setting from its text (trimmed, `undefined` when unset): its value, or `undefined` with one
 * line pushed to `problems`, naming the variable, when the text is not a whole number from `min` to `max`
 * (`Number('abc')` would reach `listen()` as NaN, `Number('1e3')` pass for 1000). Leading zeros are read as
 * decimal, as docs/configuration.md says (`0100` is 100, never octal's 64). `unit` says what the
 * number counts (`of calls an hour`); `minFrom` names the setting the minimum is taken from. The gateway's, the emulator's and the example's settings read alike.
 */
export function wholeNumberSetting(
  name: string,
  raw: string | undefined,
  range: { min: number; max: number; unit?: string; minFrom?: string },
  problems: string[],
): number | undefined {
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (/^\d+$/.test(raw) && value >= range.min && value <= range.max) return value;
  const what = range.unit === undefined ? 'a whole number' : `a whole number ${range.unit}`;
  const min = range.minFrom === undefined ? `${range.min}` : `${range.min} (${range.minFrom})`;
  problems.push(`${name} must be ${what} from ${min} to ${range.max} (got ${shownSetting(raw)})`);
  return undefined;
}

/**
 * A `true`/`false` setting from its text (trimmed, `undefined` when unset): `fallback` when unset; another text
 * is `fallback` with one line pushed to `problems`, naming the variable.
 */
export function booleanSetting(name: string, raw: string | undefined, fallback: boolean, problems: string[]): boolean {
  if (raw === undefined) return fallback;
  if (raw === 'true' || raw === 'false') return raw === 'true';
  problems.push(`${name} must be true or false (got ${shownSetting(raw)})`);
  return fallback;
}

/**
 * The problem of a URL setting (`CONTEXTIO_API_URL`, `AUTH_JWKS_URL`, a proxy's, `EMULATOR_PUBLIC_URL`) that
 * holds an ASCII control character (read trimmed, so one inside it), or `undefined` when it holds none. The URL
 * parser drops tabs and line breaks without a word and reads the rest, so such a value was taken as another
 * URL than the one written, and the start-up lines showed it with them. The line says which character and
 * where, never the value: a URL may carry credentials.
 */
export function urlControlProblem(name: string, value: string): string | undefined {
  // eslint-disable-next-line no-control-regex
  const found = /[\u0000-\u001f\u007f]/.exec(value);
  if (found === null) return undefined;
  const code = `U+${found[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`;
  const named = CONTROL_NAMES[found[0]];
  const what = named === undefined ? code : `${named} (${code})`;
  return `${name} must be a URL without tabs, line breaks or other control characters (found ${what} at character ${found.index + 1}; the URL parser would drop some silently and read another URL than the one written)`;
}

const CONTROL_NAMES: Readonly<Record<string, string>> = { '\t': 'a tab', '\n': 'a line break', '\r': 'a carriage return' };
