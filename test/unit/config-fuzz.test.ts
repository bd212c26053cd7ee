import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isIP } from 'node:net';
import { ConfigError, loadConfig, type Env, type GatewayConfig } from '../../src/config/index.ts';
import { SETTINGS, unknownSettings } from '../../src/config/settings.ts';
import { Random } from '../helpers/random.ts';
import { runScript } from '../helpers/script.ts';

/**
 * Seeded random environments against what the configuration tables (README, docs/configuration.md) and docs/limits.md's ranges promise
 * of start-up: each whole-number setting read trimmed, in decimal digits alone, within its range, its value
 * then exactly the one given, else refused; a blank value is its default (an `AUTH_*` one is refused); every
 * problem one line that starts with the variable's name and never holds a secret, nor a URL's credentials; no
 * exception but the configuration's own; the same environment always the same answer; a variable that is no
 * setting changes nothing (one under a setting's prefix is warned of). The expectation is the test's own model
 * below, written from those documents, not the loader's code. Then a few environments started for real: a refused
 * one exits 1 with its problems, one line each, and no stack trace.
 *
 * CONFIG_FUZZ_SEED=<n> replays or explores a seed, CONFIG_FUZZ_CASES=<n> widens a run; a failure prints the
 * seed, the case's index and its environment with its secrets masked.
 */
const SEED = Number(process.env['CONFIG_FUZZ_SEED'] ?? 20_261_205);
const CASES = Number(process.env['CONFIG_FUZZ_CASES'] ?? 3_000);

const MiB = 1024 * 1024;

/** The whole-number settings: their ranges (README, docs/configuration.md, docs/limits.md) and where the loaded configuration holds them. */
interface NumberSetting {
  name: string;
  min: number | ((values: Map<string, number>) => number);
  max: number;
  fallback: number | undefined | ((values: Map<string, number>) => number);
  /** Read only when the embedded emulator runs (`CONTEXTIO_API_URL` unset). */
  embeddedOnly?: true;
  read: (config: GatewayConfig) => number | undefined;
}

const emulatorOf = (config: GatewayConfig) => (config.upstream.kind === 'embedded' ? config.upstream.emulator : undefined);

// In the order loaded, so that a setting whose range starts at another's sees that one's value already.
const NUMBER_SETTINGS: NumberSetting[] = [
  { name: 'PORT', min: 0, max: 65_535, fallback: 4000, read: (c) => c.port },
  { name: 'UPSTREAM_TIMEOUT_MS', min: 1, max: 120_000, fallback: 10_000, read: (c) => c.upstreamTimeoutMs },
  { name: 'UPSTREAM_MAX_IN_FLIGHT', min: 1, max: 10_000, fallback: 256, read: (c) => c.upstreamMaxInFlight },
  { name: 'OPERATION_TIMEOUT_MS', min: 1, max: 600_000, fallback: 30_000, read: (c) => c.operationTimeoutMs },
  { name: 'SHUTDOWN_GRACE_MS', min: 0, max: 600_000, fallback: 10_000, read: (c) => c.shutdownGraceMs },
  { name: 'SHUTDOWN_DRAIN_MS', min: 0, max: 600_000, fallback: 0, read: (c) => c.shutdownDrainMs },
  { name: 'KEEP_ALIVE_TIMEOUT_MS', min: 1000, max: 3_600_000, fallback: 72_000, read: (c) => c.keepAliveTimeoutMs },
  { name: 'BREAKER_FAILURE_THRESHOLD', min: 1, max: 1000, fallback: 5, read: (c) => c.breakerFailureThreshold },
  { name: 'BREAKER_COOLDOWN_MS', min: 1, max: 600_000, fallback: 5000, read: (c) => c.breakerCooldownMs },
  { name: 'CALLER_WRITES_PER_HOUR', min: 0, max: 1_000_000, fallback: 60, read: (c) => c.callerWritesPerHour },
  { name: 'CALLER_READS_PER_HOUR', min: 0, max: 1_000_000, fallback: 1000, read: (c) => c.callerReadsPerHour },
  { name: 'MAX_BODY_BYTES', min: 1024, max: 100 * MiB, fallback: MiB, read: (c) => c.maxBodyBytes },
  { name: 'MAX_ANSWER_BYTES', min: 64 * 1024, max: 512 * MiB, fallback: 64 * MiB, read: (c) => c.maxAnswerBytes },
  { name: 'MAX_OPERATIONS_IN_FLIGHT', min: 1, max: 1_000_000, fallback: 1000, read: (c) => c.maxOperationsInFlight },
  // "At least MAX_BODY_BYTES", "at least MAX_ANSWER_BYTES (… unset, it is MAX_ANSWER_BYTES when that is more than 256 MiB)".
  { name: 'MAX_BODY_BYTES_IN_FLIGHT', min: (v) => v.get('MAX_BODY_BYTES')!, max: 64 * 1024 * MiB, fallback: 128 * MiB, read: (c) => c.maxBodyBytesInFlight },
  {
    name: 'MAX_ANSWER_BYTES_IN_FLIGHT',
    min: (v) => v.get('MAX_ANSWER_BYTES')!,
    max: 64 * 1024 * MiB,
    fallback: (v) => Math.max(256 * MiB, v.get('MAX_ANSWER_BYTES')!),
    read: (c) => c.maxAnswerBytesInFlight,
  },
  { name: 'MAX_QUERY_DEPTH', min: 1, max: 300, fallback: 12, read: (c) => c.operationLimits.maxDepth },
  { name: 'MAX_ALIASES', min: 0, max: 100_000, fallback: 100, read: (c) => c.operationLimits.maxAliases },
  { name: 'MAX_ROOT_FIELDS', min: 1, max: 100_000, fallback: 50, read: (c) => c.operationLimits.maxRootFields },
  { name: 'MAX_QUERY_COST', min: 1, max: 1_000_000_000, fallback: 10_000, read: (c) => c.operationLimits.maxCost },
  { name: 'MAX_QUERY_TOKENS', min: 100, max: 1_000_000, fallback: 3000, read: (c) => c.operationLimits.maxTokens },
  // Embedded, the emulator listens on a free port unless EMULATOR_PORT says which.
  { name: 'EMULATOR_PORT', min: 0, max: 65_535, fallback: 0, embeddedOnly: true, read: (c) => emulatorOf(c)?.port },
  { name: 'EMULATOR_RATE_LIMIT', min: 1, max: 1_000_000, fallback: undefined, embeddedOnly: true, read: (c) => emulatorOf(c)?.rateLimitPerHour },
];

/** What the model expects of one variable set: accepted, or refused (a problem named by it). Variables it has no verdict on (the proxies, EMULATOR_PUBLIC_URL, EMULATOR_ALLOWED_HOSTS) are held to the checks of every problem alone. */
type Verdict = 'ok' | 'refused';

/** A generated environment, and what in it must never be shown. */
interface Case {
  env: Env;
  secrets: string[];
}

/** docs/configuration.md: "Values are read trimmed, and one that is empty or only spaces counts as unset". JavaScript's trim. */
const blank = (value: string | undefined) => value === undefined || value.trim() === '';

const ALNUM = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
function token(random: Random, length: number): string {
  let text = '';
  for (let i = 0; i < length; i += 1) text += random.pick([...ALNUM]);
  return text;
}

/** A value for a whole-number setting of range [min, max]: in it, at its edges and one past, and written every other way. */
function numberText(random: Random, min: number, max: number, wild: boolean): string {
  const inRange = () => String(min + random.int(Math.min(max - min, 2 ** 31) + 1));
  const v = inRange();
  const valid = [() => v, () => v, () => v, () => String(min), () => String(max), () => ` ${v} `, () => `\t${v}\n`, () => `\u00a0${v}\ufeff`, () => `000${v}`, () => '', () => '   '];
  if (!wild) return random.pick(valid)();
  return random.pick<() => string>([
    ...valid,
    () => String(min - 1),
    () => String(max + 1),
    () => '0',
    () => '-0',
    () => `-${v}`,
    () => `${v}.5`,
    () => `${v}.0`,
    () => `${v}.`,
    () => '1e3',
    () => `${v}e0`,
    () => '0x10',
    () => '0b11',
    () => '0o17',
    () => `+${v}`,
    () => `${'0'.repeat(400)}${v}`,
    () => '9'.repeat(400),
    () => String(2 ** 53 + 1),
    () => '٣',
    () => `${v}٣`,
    () => '３',
    () => 'NaN',
    () => 'Infinity',
    () => '-Infinity',
    () => '1_000',
    () => '1,000',
    () => `${v}abc`,
    () => 'abc',
    () => `${v} ${v}`,
    () => `${v}\n${v}`,
    () => `${v}\r\nPORT=1`,
  ])();
}

/** Whether a whole-number setting's text is accepted, and its value then, as README says: digits only, in range. */
function numberVerdict(text: string | undefined, min: number, max: number): { verdict: 'default' } | { verdict: 'ok'; value: number } | { verdict: 'refused' } {
  if (blank(text)) return { verdict: 'default' };
  const trimmed = text!.trim();
  if (!/^[0-9]+$/.test(trimmed)) return { verdict: 'refused' };
  const value = Number(trimmed);
  return value >= min && value <= max ? { verdict: 'ok', value } : { verdict: 'refused' };
}

/** A URL with what the model knows of it: its scheme (or none it parses with), credentials, a query or fragment, a loopback host. */
interface UrlSample {
  value: string;
  /** `http:`/`https:` with a host, as `new URL` reads it; `undefined` when it is no URL with a host. */
  scheme: 'http' | 'https' | 'other' | undefined;
  credentials: boolean;
  queryOrFragment: boolean;
  loopback: boolean;
  /** Text in it that must never be shown (a password). */
  secret?: string;
}

function urlSample(random: Random, path: string, wild: boolean): UrlSample {
  const plain = (value: string, scheme: UrlSample['scheme'], loopback = false): UrlSample => ({ value, scheme, credentials: false, queryOrFragment: false, loopback });
  const password = `pw${token(random, 10)}`;
  const samples: Array<() => UrlSample> = [
    () => plain(`https://api.example.com${path}`, 'https'),
    () => plain(`http://api.example.com${path}`, 'http'),
    () => plain(`https://api.example.com${path}/`, 'https'),
    () => plain(`https://api.example.com${path}///`, 'https'),
    () => plain(`HTTPS://API.Example.COM${path}`, 'https'),
    () => plain(` https://api.example.com${path} `, 'https'),
    () => plain(`https://api.example.com:8443${path}`, 'https'),
    () => plain(`http://127.0.0.1:4010${path}`, 'http', true),
    () => plain(`http://localhost:4010${path}`, 'http', true),
    () => plain(`http://[::1]:4010${path}`, 'http', true),
    () => plain(`https://[2001:db8::1]:8443${path}`, 'https'),
    () => plain(`https://[2001:db8::1]${path}/`, 'https'),
    () => plain(`https://bücher.example${path}`, 'https'),
    () => plain(`https://${'a'.repeat(3000)}.example${path}`, 'https'),
    () => ({ ...plain(`https://user:${password}@api.example.com${path}`, 'https'), credentials: true, secret: password }),
    () => ({ ...plain(`https://:${password}@api.example.com${path}`, 'https'), credentials: true, secret: password }),
    () => ({ ...plain(`http://user:${password}@127.0.0.1:4010${path}`, 'http', true), credentials: true, secret: password }),
    () => ({ ...plain(`https://api.example.com${path}?key=v`, 'https'), queryOrFragment: true }),
    () => ({ ...plain(`https://api.example.com${path}?`, 'https'), queryOrFragment: true }),
    () => ({ ...plain(`https://api.example.com${path}#frag`, 'https'), queryOrFragment: true }),
    () => ({ ...plain(`https://api.example.com${path}#`, 'https'), queryOrFragment: true }),
    () => plain(`ftp://api.example.com${path}`, 'other'),
    () => plain('file:///etc/passwd', 'other'),
    () => plain('javascript:alert(1)', 'other'),
    () => plain(`ws://api.example.com${path}`, 'other'),
    () => plain(`api.example.com${path}`, undefined),
    () => plain('https://', undefined),
    () => plain('http://[::1', undefined),
    () => plain(`https://exa mple.com${path}`, undefined),
    () => plain(`://api.example.com${path}`, undefined),
    () => plain('not a url', undefined),
    () => plain('%', undefined),
  ];
  // The first 14 are accepted wherever an http(s) URL is.
  return random.pick(wild ? samples : samples.slice(0, 14))();
}

/** A value for a list setting: its items from `items`, some empty, repeated or spaced, joined by commas. */
function list<T extends { text: string }>(random: Random, items: readonly T[]): T[] {
  const chosen: T[] = [];
  const count = 1 + random.int(4);
  for (let i = 0; i < count; i += 1) chosen.push(random.chance(0.2) && chosen.length > 0 ? random.pick(chosen) : random.pick(items));
  return chosen;
}
const joined = (random: Random, items: readonly { text: string }[]) => items.map((item) => (random.chance(0.3) ? ` ${item.text} ` : item.text)).join(random.pick([',', ', ', ',,']));

/** CORS_ORIGINS' items: an origin as browsers send it (what it reads as), or one refused. */
const CORS_ITEMS: Array<{ text: string; origin: string | undefined | '' }> = [
  { text: 'https://app.example.com', origin: 'https://app.example.com' },
  { text: 'https://app.example.com/', origin: 'https://app.example.com' },
  { text: 'http://devbox.lan:4010', origin: 'http://devbox.lan:4010' },
  { text: 'http://[::1]:3000', origin: 'http://[::1]:3000' },
  { text: '', origin: '' },
  { text: 'https://App.Example.com', origin: undefined },
  { text: 'https://app.example.com:443', origin: undefined },
  { text: 'https://app.example.com/path', origin: undefined },
  { text: 'https://app.example.com?x=1', origin: undefined },
  { text: 'https://app.example.com#x', origin: undefined },
  { text: '*', origin: undefined },
  { text: 'https://*.example.com', origin: undefined },
  { text: 'null', origin: undefined },
  { text: 'app.example.com', origin: undefined },
  { text: 'ftp://app.example.com', origin: undefined },
];

/** One random environment, and the model's verdict on each variable set in it. */
function generate(random: Random, wild: boolean): Case & { verdicts: Map<string, Verdict>; cors: string[] | undefined } {
  const env: Env = {};
  const secrets: string[] = [];
  const verdicts = new Map<string, Verdict>();
  const p = 0.15;

  for (const setting of NUMBER_SETTINGS) {
    if (!random.chance(p)) continue;
    // The dependent ranges are drawn as if from their floor: the model works out the real one.
    const min = typeof setting.min === 'number' ? setting.min : setting.name === 'MAX_BODY_BYTES_IN_FLIGHT' ? MiB : 64 * MiB;
    env[setting.name] = numberText(random, min, setting.max, wild);
  }

  // The upstream: remote (a URL with or without its key pair) or embedded.
  let upstreamUrl: UrlSample | undefined;
  if (random.chance(0.4)) {
    upstreamUrl = urlSample(random, '/2.0', wild);
    env['CONTEXTIO_API_URL'] = upstreamUrl.value;
    if (upstreamUrl.secret) secrets.push(upstreamUrl.secret);
  } else if (random.chance(0.05)) {
    env['CONTEXTIO_API_URL'] = random.pick(['', '  ']);
  }
  // Tame, the key pair goes with the URL (and is left out, or blank, without it).
  const pair = wild ? random.chance(0.45) : upstreamUrl !== undefined;
  if (pair || (!wild && random.chance(0.1))) {
    const blanks = ['', ' '];
    env['CONTEXTIO_CONSUMER_KEY'] = random.pick(wild ? ['key', ` key-${token(random, 6)} `, ...blanks] : pair ? ['key', ` key-${token(random, 6)} `] : blanks);
    const secret = `cs${token(random, 16)}`;
    env['CONTEXTIO_CONSUMER_SECRET'] = random.pick(wild ? [secret, ` ${secret}\n`, ...blanks] : pair ? [secret, ` ${secret}\n`] : blanks);
    secrets.push(secret);
  }

  // Authentication.
  if (random.chance(0.35)) {
    const length = random.pick(wild ? [32, 48, 31, 8, 0] : [32, 48]);
    const secret = length === 0 ? '' : `js${token(random, length - 2)}`;
    if (secret !== '') secrets.push(secret);
    // Multibyte: 16 two-byte letters are the 32 bytes README asks for, 15 and one ASCII letter are not.
    const multibyte = !wild || random.chance(0.5) ? 'é'.repeat(16) : `${'é'.repeat(15)}x`;
    env['AUTH_JWT_SECRET'] = random.pick(wild ? [secret, ` ${secret} `, secret, multibyte, '  '] : [secret, ` ${secret} `, multibyte]);
  }
  let jwks: UrlSample | undefined;
  if (random.chance(0.25)) {
    jwks = urlSample(random, '/.well-known/jwks.json', wild);
    env['AUTH_JWKS_URL'] = jwks.value;
    if (jwks.secret) secrets.push(jwks.secret);
  } else if (wild && random.chance(0.03)) {
    env['AUTH_JWKS_URL'] = ' ';
  }
  for (const name of ['AUTH_ISSUER', 'AUTH_AUDIENCE']) {
    if (random.chance(0.15)) env[name] = random.pick(wild ? ['https://idp.example.com/', 'contextio-graphql', '', ' '] : ['https://idp.example.com/', 'contextio-graphql']);
  }

  // The egress proxy's variables, and NO_PROXY's lists.
  for (const name of ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy']) {
    if (!random.chance(0.08)) continue;
    const password = `px${token(random, 10)}`;
    secrets.push(password);
    const valid = ['http://proxy.example:3128', 'proxy.example:3128', `http://user:${password}@proxy.example:3128`, `https://user:${password}@[2001:db8::2]:3128/`];
    env[name] = random.pick(wild ? [
      ...valid,
      `socks5://user:${password}@proxy.example:1080`,
      `http://user:%zz${password}@proxy.example`,
      `ftp://${password}`,
      'http://',
      '',
      ':3128',
    ] : valid);
  }
  for (const name of ['NO_PROXY', 'no_proxy']) {
    if (!random.chance(0.08)) continue;
    const entries = ['api.example.com', '.example.com', '*.example.com', '*', 'idp.example.com:443', '[2001:db8::1]', '2001:db8:0:0:0:0:0:1', 'fe80::1%eth0', '10.0.0.0/8', '', ' ', 'api.example.com.', ':443', '[', 'x'.repeat(300)];
    env[name] = joined(random, list(random, entries.map((text) => ({ text }))));
  }

  // The gateway's other settings.
  if (random.chance(p)) env['HOST'] = random.pick(!wild ? ['127.0.0.1', 'localhost', '::1', '127.1.2.3', ' 127.0.0.1 '] : ['127.0.0.1', 'localhost', '::1', '127.1.2.3', ' 127.0.0.1 ', '0.0.0.0', '::', '192.0.2.1', 'LOCALHOST', 'gateway.invalid', '', 'h'.repeat(3000), 'bad\nhost', '127.0.0.1:4000', '[::1]']);
  if (random.chance(p)) env['LOG_LEVEL'] = random.pick(!wild ? ['debug', 'info', 'warn', 'error', ' warn ', ''] : ['debug', 'info', 'warn', 'error', ' warn ', 'INFO', 'Error', 'verbose', 'trace', '', 'info\nwarn', 'x'.repeat(3000)]);
  if (random.chance(p)) env['NODE_ENV'] = random.pick(['development', ' development\n', 'production', 'Development', 'dev', 'test', '', ' ']);
  if (random.chance(p)) env['INTROSPECTION'] = random.pick(!wild ? ['true', 'false', ' true ', 'false\n', ''] : ['true', 'false', ' true ', 'false\n', 'TRUE', 'False', '1', '0', 'yes', 'no', 'on', 'off', '', 'true\nfalse']);
  let cors: string[] | undefined;
  if (random.chance(p)) {
    const items = list(random, wild ? CORS_ITEMS : CORS_ITEMS.filter((item) => item.origin !== undefined));
    env['CORS_ORIGINS'] = joined(random, items);
    if (items.some((item) => item.origin === undefined)) verdicts.set('CORS_ORIGINS', 'refused');
    else cors = items.map((item) => item.origin!).filter((origin) => origin !== '');
  }

  // The embedded emulator's.
  if (random.chance(p)) env['EMULATOR_HOST'] = random.pick(['127.0.0.1', '0.0.0.0', '::', '::1', 'localhost', '']);
  if (random.chance(p)) env['EMULATOR_SEED'] = random.pick(wild ? ['demo', 'none', ' none ', 'Demo', 'random', ''] : ['demo', 'none', ' none ', '']);
  if (random.chance(p)) {
    const sample: Pick<UrlSample, 'value' | 'secret'> = wild ? urlSample(random, '', wild) : { value: random.pick(['http://devbox.lan:4010', 'http://localhost:4010', 'https://emulator.example.com/']) };
    env['EMULATOR_PUBLIC_URL'] = sample.value;
    if (sample.secret) secrets.push(sample.secret);
  }
  if (random.chance(p)) {
    // A URL pasted in by mistake, its password with a comma: the list splits it.
    const password = `pa${token(random, 6)},${token(random, 8)}`;
    secrets.push(...password.split(','));
    const valid = ['devbox.lan', 'devbox.lan:4010', '*', '[::1]', '127.0.0.1:4010', ''];
    const items = wild ? [...valid, 'bad host', `http://user:${password}@devbox.lan`, `user:${password}@devbox.lan`, 'https://devbox.lan/'] : valid;
    env['EMULATOR_ALLOWED_HOSTS'] = joined(random, list(random, items.map((text) => ({ text }))));
  }
  if (random.chance(p)) env['EMULATOR_CONSUMER_KEY'] = random.pick(['dev-key', `k${token(random, 6)}`, '']);
  if (random.chance(p)) {
    const secret = `es${token(random, 14)}`;
    secrets.push(secret);
    env['EMULATOR_CONSUMER_SECRET'] = random.pick([secret, ` ${secret} `, '']);
  }
  if (random.chance(0.05)) env['EMULATOR_DATA_FILE'] = random.pick(['/tmp/never-written.json', '']);

  // The model's verdicts on what depends on more than one variable.
  const remote = !blank(env['CONTEXTIO_API_URL']);
  const keySet = !blank(env['CONTEXTIO_CONSUMER_KEY']);
  const secretSet = !blank(env['CONTEXTIO_CONSUMER_SECRET']);
  if (remote) {
    const url = upstreamUrl!;
    const http = url.scheme === 'http' || url.scheme === 'https';
    verdicts.set('CONTEXTIO_API_URL', http && !url.credentials && !url.queryOrFragment ? 'ok' : 'refused');
    // README: the key pair is "required with CONTEXTIO_API_URL (and refused without it)".
    verdicts.set('CONTEXTIO_CONSUMER_KEY', keySet ? 'ok' : 'refused');
    verdicts.set('CONTEXTIO_CONSUMER_SECRET', secretSet ? 'ok' : 'refused');
  } else if (keySet || secretSet) {
    verdicts.set('CONTEXTIO_CONSUMER_KEY', 'refused');
  }
  const hasSecret = !blank(env['AUTH_JWT_SECRET']);
  const hasJwks = !blank(env['AUTH_JWKS_URL']);
  // A key variable set but blank is the problem said: not again as no key at all, for the issuer or HOST.
  const keyBlank = ['AUTH_JWT_SECRET', 'AUTH_JWKS_URL'].some((name) => env[name] !== undefined && blank(env[name]));
  if (env['AUTH_JWT_SECRET'] !== undefined) {
    verdicts.set('AUTH_JWT_SECRET', hasSecret && Buffer.byteLength(env['AUTH_JWT_SECRET'].trim()) >= 32 ? 'ok' : 'refused');
  }
  if (env['AUTH_JWKS_URL'] !== undefined) {
    // docs/configuration.md: "must be https, or http on a loopback address only; never with credentials".
    const ok = jwks !== undefined && (jwks.scheme === 'https' || (jwks.scheme === 'http' && jwks.loopback)) && !jwks.credentials;
    verdicts.set('AUTH_JWKS_URL', ok ? 'ok' : 'refused');
  }
  for (const name of ['AUTH_ISSUER', 'AUTH_AUDIENCE']) {
    if (env[name] === undefined) continue;
    // Blank is refused for every AUTH_* variable; set, it needs something to check it (a key set blank is said alone).
    verdicts.set(name, blank(env[name]) || (!hasSecret && !hasJwks && !keyBlank) ? 'refused' : 'ok');
  }
  if (env['HOST'] !== undefined) {
    const host = env['HOST'].trim();
    const loopback = host === '' || ['127.0.0.1', 'localhost', '::1', '127.1.2.3', 'LOCALHOST'].includes(host);
    // An address or a host name, nothing more (no port, scheme or brackets), in either mode.
    const listenable = host === '' || isIP(host) !== 0 || /^[A-Za-z0-9_.-]+$/.test(host);
    // Open mode (neither AUTH_JWT_SECRET nor AUTH_JWKS_URL) "refuses to bind to a non-loopback address".
    verdicts.set('HOST', !listenable || (!loopback && !hasSecret && !hasJwks && !keyBlank) ? 'refused' : 'ok');
  }
  const oneOf = (name: string, values: string[]) => {
    if (env[name] !== undefined) verdicts.set(name, blank(env[name]) || values.includes(env[name].trim()) ? 'ok' : 'refused');
  };
  oneOf('LOG_LEVEL', ['debug', 'info', 'warn', 'error']);
  oneOf('INTROSPECTION', ['true', 'false']);
  if (!remote) oneOf('EMULATOR_SEED', ['demo', 'none']);
  for (const name of ['NODE_ENV', 'EMULATOR_HOST', 'EMULATOR_CONSUMER_KEY', 'EMULATOR_CONSUMER_SECRET', 'EMULATOR_DATA_FILE', 'NO_PROXY', 'no_proxy']) {
    if (env[name] !== undefined) verdicts.set(name, 'ok');
  }
  // docs/configuration.md: "the EMULATOR_* ones only when the emulator runs".
  if (remote) for (const name of Object.keys(env)) if (name.startsWith('EMULATOR_')) verdicts.set(name, 'ok');
  return { env, secrets, verdicts, cors };
}

/** Variables that are no setting: near misses under a setting's prefix (warned of) and others (not). */
const NEAR_MISSES = ['UPSTREAM_TIMEOUT', 'AUTH_JWT_SECRETS', 'MAX_DEPTH', 'CORS_ORIGIN', 'LOG_LEVELS', 'EMULATOR_PORTS', 'INTROSPECT', 'CONTEXTIO_API_KEY', 'BREAKER_THRESHOLD', 'contextio_api_url'];
const UNRELATED = ['PORTS', 'HOSTNAME', 'Port', 'APOLLO_KEY'];

type Outcome = { config: GatewayConfig; problems?: undefined } | { problems: string[]; config?: undefined };

function outcomeOf(env: Env): Outcome {
  try {
    return { config: loadConfig(env) };
  } catch (error) {
    if (error instanceof ConfigError) return { problems: error.problems };
    throw error;
  }
}

/** The outcome as data, the emulator's secret made up at start left out (random by design). */
function comparable(outcome: Outcome): unknown {
  if (outcome.config === undefined) return outcome.problems;
  const { upstream } = outcome.config;
  if (upstream.kind === 'embedded' && upstream.randomSecret) return { ...outcome.config, upstream: { ...upstream, emulator: { ...upstream.emulator, consumerSecret: '(made up)' } } };
  return outcome.config;
}

const KNOWN = new Set<string>(SETTINGS);
/** The variable a problem names: its first word (`HOST=…`, `CONTEXTIO_CONSUMER_KEY/CONTEXTIO_CONSUMER_SECRET are set …`). */
const namedBy = (problem: string) => /^[A-Za-z_]+/.exec(problem)?.[0];

/** Every check of one case; throws an AssertionError saying what was expected. */
function check({ env, secrets, verdicts, cors }: ReturnType<typeof generate>, random: Random): Outcome {
  const outcome = outcomeOf(env);
  assert.deepEqual(comparable(outcomeOf(env)), comparable(outcome), 'the same environment gave another answer');
  const problems = outcome.problems ?? [];
  const named = new Set(problems.map(namedBy));

  for (const problem of problems) {
    const name = namedBy(problem);
    assert.ok(name !== undefined && KNOWN.has(name), `a problem that names no setting: ${JSON.stringify(problem)}`);
    assert.ok(env[name] !== undefined || ['CONTEXTIO_CONSUMER_KEY', 'CONTEXTIO_CONSUMER_SECRET'].includes(name), `a problem naming ${name}, which is not set: ${JSON.stringify(problem)}`);
    assert.doesNotMatch(problem, /[\n\r\u2028\u2029]/, `a problem on more than one line: ${JSON.stringify(problem)}`);
    assert.ok(problem.length <= 500, `a problem of ${problem.length} characters: ${JSON.stringify(problem.slice(0, 300))}…`);
    for (const secret of secrets) assert.ok(!problem.includes(secret), `a secret in a problem: ${JSON.stringify(problem)}`);
  }

  // The whole-number settings, against README's ranges.
  const remote = !blank(env['CONTEXTIO_API_URL']);
  const values = new Map<string, number>();
  for (const setting of NUMBER_SETTINGS) {
    const min = typeof setting.min === 'number' ? setting.min : setting.min(values);
    const fallback = typeof setting.fallback === 'function' ? setting.fallback(values) : setting.fallback;
    const read = numberVerdict(env[setting.name], min, setting.max);
    const value = read.verdict === 'ok' ? read.value : fallback;
    if (value !== undefined) values.set(setting.name, value);
    if (setting.embeddedOnly && remote) {
      assert.ok(!named.has(setting.name), `${setting.name} is ignored beside CONTEXTIO_API_URL, yet refused: ${JSON.stringify(problems)}`);
      continue;
    }
    if (read.verdict === 'refused') {
      const line = problems.find((problem) => namedBy(problem) === setting.name);
      assert.ok(line !== undefined, `${setting.name}=${JSON.stringify(env[setting.name])} is outside ${min}–${setting.max} or not in digits, yet accepted`);
      assert.ok(line.startsWith(`${setting.name} must be a whole number`) && new RegExp(`from ${min}( \\([A-Z_]+\\))? to ${setting.max} `).test(line), `${setting.name}'s problem does not give its range: ${line}`);
    } else {
      assert.ok(!named.has(setting.name), `${setting.name}=${JSON.stringify(env[setting.name])} refused: ${JSON.stringify(problems)}`);
      if (outcome.config !== undefined) {
        const loaded = setting.read(outcome.config);
        assert.equal(loaded, value, `${setting.name}=${JSON.stringify(env[setting.name])} loaded as ${loaded}`);
        if (loaded !== undefined) assert.ok(Number.isSafeInteger(loaded) && loaded >= min && loaded <= setting.max, `${setting.name} loaded as ${loaded}, outside ${min}–${setting.max}`);
      }
    }
  }

  for (const [name, verdict] of verdicts) {
    if (verdict === 'refused') assert.ok(named.has(name), `${name}=${JSON.stringify(env[name])} should be refused: ${JSON.stringify(problems)}`);
    if (verdict === 'ok') assert.ok(!named.has(name), `${name}=${JSON.stringify(env[name])} should be accepted: ${JSON.stringify(problems)}`);
  }

  if (outcome.config !== undefined) {
    const { config } = outcome;
    if (cors !== undefined) assert.deepEqual(config.corsOrigins, cors, 'CORS_ORIGINS');
    assert.equal(config.development, env['NODE_ENV']?.trim() === 'development', 'NODE_ENV');
    const level = env['LOG_LEVEL']?.trim() || 'info';
    assert.equal(config.logLevel, level, 'LOG_LEVEL');
    assert.equal(config.host, env['HOST']?.trim() || '127.0.0.1', 'HOST');
    if (config.upstream.kind === 'remote') {
      assert.ok(remote, 'a remote upstream without CONTEXTIO_API_URL');
      assert.equal(config.upstream.consumerSecret, env['CONTEXTIO_CONSUMER_SECRET']!.trim());
      assert.doesNotMatch(config.upstream.baseUrl, /\/$/, 'the base URL keeps a trailing slash, which the paths appended to it would double');
    } else {
      assert.ok(!remote, 'the embedded emulator beside CONTEXTIO_API_URL');
    }
  }

  // Variables that are no setting change nothing; those under a setting's prefix are warned of, by name, without their value.
  const extra: Env = {};
  for (const name of random.subset(NEAR_MISSES, 0.2, false)) extra[name] = `${random.pick(['5', 'true', 'https://api.example.com/2.0'])}-${token(random, 12)}`;
  for (const name of random.subset(UNRELATED, 0.2, false)) extra[name] = random.pick(['80', 'x', '']);
  if (Object.keys(extra).length > 0) {
    const widened = { ...env, ...extra };
    assert.deepEqual(comparable(outcomeOf(widened)), comparable(outcome), `variables that are no setting changed the outcome: ${Object.keys(extra).join(', ')}`);
    const warnings = unknownSettings(widened);
    for (const name of Object.keys(extra)) {
      const warned = warnings.some((line) => line.startsWith(`${name} is not a setting`));
      assert.equal(warned, NEAR_MISSES.includes(name), `${name}: ${JSON.stringify(warnings)}`);
    }
    // The near misses' values, each with a random token (the others' `x` is a letter of contextio_api_url's line).
    for (const [name, value] of Object.entries(extra)) if (value && NEAR_MISSES.includes(name)) assert.ok(warnings.every((line) => !line.includes(value)), `a warning quotes a value: ${JSON.stringify(warnings)}`);
  }
  return outcome;
}

/** The environment as a failure prints it: each secret masked. */
function masked(env: Env, secrets: string[]): string {
  const shown = Object.fromEntries(Object.entries(env).map(([name, value]) => [name, value !== undefined && value.length > 120 ? `${value.slice(0, 120)}… (${value.length} characters)` : value]));
  let text = JSON.stringify(shown, null, 1);
  for (const secret of secrets) text = text.split(secret).join('***');
  return text;
}

describe(`random environments (CONFIG_FUZZ_SEED=${SEED}, ${CASES} cases)`, () => {
  it('are each accepted with every value as given and within its documented range, or refused with a line per problem naming its variable and no secret', () => {
    const random = new Random(SEED);
    let accepted = 0;
    for (let index = 0; index < CASES; index += 1) {
      // Half the environments only of values README accepts, so that as many are accepted as refused.
      const generated = generate(random, random.chance(0.5));
      try {
        const outcome = check(generated, random);
        if (outcome.config !== undefined) accepted += 1;
      } catch (error) {
        const what = error instanceof Error ? error.message : String(error);
        const how = error instanceof assert.AssertionError ? what : `${(error as Error).name} thrown: ${(error as Error).stack ?? what}`;
        assert.fail(`CONFIG_FUZZ_SEED=${SEED} case ${index}: ${how}\nenvironment (secrets masked): ${masked(generated.env, generated.secrets)}`);
      }
    }
    // Both outcomes drawn often enough for either side of each check to have been reached.
    assert.ok(accepted > CASES / 10 && accepted < CASES - CASES / 10, `${accepted} of ${CASES} accepted`);
  });

  it('refused when started, exit 78 with each problem on one line of its own and no stack trace', async () => {
    const random = new Random(SEED ^ 0x5eed);
    const fixed: Case[] = [
      { env: { PORT: '1e3' }, secrets: [] },
      { env: { LOG_LEVEL: 'verbose\nLOG_LEVEL=debug', PORT: '٣' }, secrets: [] },
      { env: { HOST: '0.0.0.0', CONTEXTIO_API_URL: 'https://user:proxy-pw-1@api.example.com/2.0', CONTEXTIO_CONSUMER_SECRET: 'consumer-secret-1', AUTH_ISSUER: ' ' }, secrets: ['proxy-pw-1', 'consumer-secret-1'] },
    ];
    // And two random environments the loader refuses, drawn as above.
    const drawn: Case[] = [];
    while (drawn.length < 2) {
      const generated = generate(random, true);
      if (outcomeOf(generated.env).problems !== undefined) drawn.push(generated);
    }
    const cases = [...fixed, ...drawn];
    await Promise.all(
      cases.map(async ({ env, secrets }, index) => {
        const expected = outcomeOf(env).problems;
        assert.ok(expected !== undefined && expected.length > 0, `start ${index}: the environment is accepted in-process`);
        const run = runScript('src/main.ts', env as Record<string, string>);
        const [code, signal] = await run.exited;
        const where = `start ${index} (CONFIG_FUZZ_SEED=${SEED}), environment (secrets masked): ${masked(env, secrets)}\nprinted:\n${run.lines.join('\n')}`;
        assert.deepEqual([code, signal], [78, null], where);
        assert.deepEqual(run.lines, expected.map((problem) => `contextio-graphql: ${problem}`), where);
        for (const line of run.lines) {
          assert.doesNotMatch(line, /^\s+at |Error:/, where);
          for (const secret of secrets) assert.ok(!line.includes(secret), where);
        }
      }),
    );
  });
});
