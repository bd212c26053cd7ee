import { domainToASCII } from 'node:url';
import { exactOrigin, hostnameOf, isLoopbackHost, originAsBrowsersSendIt } from '../support/url.ts';
import type { EmulatorOptions } from './server.ts';
import { quotedSetting, shownSetting } from '../support/shortened.ts';
import { listenHostProblem, urlControlProblem, wholeNumberSetting } from '../config/settings.ts';
import { namesFolder } from './persistence.ts';

/** The development key pair the emulator accepts unless told otherwise; the secret is no secret. */
export const DEFAULT_CONSUMER_KEY = 'dev-key';
export const DEFAULT_CONSUMER_SECRET = 'dev-secret';

/**
 * Whether other machines may reach the emulator: it listens beyond loopback, or answers a name that is not a
 * loopback one (`EMULATOR_PUBLIC_URL`'s, `EMULATOR_ALLOWED_HOSTS`), as behind a proxy that forwards to it.
 */
export function reachableFromElsewhere(options: Pick<EmulatorOptions, 'publicUrl' | 'allowedHosts'> & { host: string }): boolean {
  // The address it listens on is bare, never with a port: read as a Host header, `::1` would lose its `:1`.
  if (!isLoopbackHost(options.host)) return true;
  const names = [...(options.publicUrl ? [new URL(options.publicUrl).host] : []), ...(options.allowedHosts ?? [])];
  return names.some((name) => name === '*' || !isLoopbackHost(hostnameOf(name)));
}

/**
 * What `npm run emulator` warns of when others may reach it while it takes the public development secret:
 * anyone can then use its API (the embedded one makes a secret up instead, src/config/index.ts).
 */
export function publicSecretWarning(options: Parameters<typeof reachableFromElsewhere>[0] & { consumerSecret?: string }): string | undefined {
  if ((options.consumerSecret ?? DEFAULT_CONSUMER_SECRET) !== DEFAULT_CONSUMER_SECRET || !reachableFromElsewhere(options)) return undefined;
  return 'reachable beyond loopback (EMULATOR_HOST, EMULATOR_PUBLIC_URL or EMULATOR_ALLOWED_HOSTS) with the public development secret: anyone who reaches it can read and change its accounts; set EMULATOR_CONSUMER_SECRET';
}

/**
 * The emulator's settings from `EMULATOR_*` variables (the README's emulator table), shared by
 * `npm run emulator` (default port 4010) and the embedded one of `npm start` (default: a free port).
 * Problems are pushed to `problems`, one line each naming the variable.
 */
export function emulatorOptionsFromEnv(
  env: Record<string, string | undefined>,
  defaultPort: number,
  problems: string[],
): EmulatorOptions & { host: string; port: number } {
  const read = (name: string) => env[name]?.trim() || undefined;
  const port = wholeNumberSetting('EMULATOR_PORT', read('EMULATOR_PORT'), { min: 0, max: 65_535 }, problems) ?? defaultPort;
  const rateLimitPerHour = wholeNumberSetting('EMULATOR_RATE_LIMIT', read('EMULATOR_RATE_LIMIT'), { min: 1, max: 1_000_000, unit: 'of calls an hour' }, problems);
  const seed = read('EMULATOR_SEED') ?? 'demo';
  if (seed !== 'demo' && seed !== 'none') problems.push(`EMULATOR_SEED must be "demo" or "none" (got ${shownSetting(seed)})`);
  const dataFile = read('EMULATOR_DATA_FILE');
  // Refused here, with the other settings (exit 78), not when the start reads it: no retry mends a spelling.
  if (dataFile !== undefined && namesFolder(dataFile)) problems.push(`EMULATOR_DATA_FILE names a folder (got ${shownSetting(dataFile)}): set it to a file's path`);
  const publicUrl = read('EMULATOR_PUBLIC_URL');
  const publicControl = publicUrl === undefined ? undefined : urlControlProblem('EMULATOR_PUBLIC_URL', publicUrl);
  const publicOrigin = publicUrl === undefined || publicControl !== undefined ? undefined : exactOrigin(publicUrl);
  if (publicControl !== undefined) {
    // Refused as an origin too, whose advice would be the origin read without it.
    problems.push(publicControl);
  } else if (publicUrl !== undefined && publicOrigin === undefined) {
    const shown = publicUrl.includes('@') ? 'a URL with credentials, not shown' : quotedSetting(publicUrl);
    const spelling = publicUrl.includes('@') ? undefined : originAsBrowsersSendIt(publicUrl);
    const suggestion = spelling === undefined ? '' : `: written as browsers send it, ${spelling}`;
    problems.push(`EMULATOR_PUBLIC_URL must be an http(s) origin such as http://devbox.lan:4010, with no path (got ${shown}${suggestion})`);
  }
  const rawAllowedHosts = read('EMULATOR_ALLOWED_HOSTS');
  const allowedHosts = rawAllowedHosts?.split(',').map((name) => asciiName(name.trim())).filter(Boolean);
  const badHost = allowedHosts?.find((name) => name !== '*' && !isHostAndPort(name));
  if (allowedHosts?.length === 0) {
    // Commas and spaces only: an empty list would answer loopback names alone, also where EMULATOR_HOST=0.0.0.0 answers any.
    problems.push(`EMULATOR_ALLOWED_HOSTS names no host (got ${quotedSetting(rawAllowedHosts!)}): name one or more, or unset it`);
  } else if (badHost !== undefined) {
    // Like the URLs above: a value with an `@` may hold credentials pasted in by mistake. Looked for in the whole
    // list, as CORS_ORIGINS does: a comma in a password splits its URL into entries, the first without the `@`.
    const shown = rawAllowedHosts!.includes('@') ? 'a value with an @, not shown' : quotedSetting(badHost);
    problems.push(`EMULATOR_ALLOWED_HOSTS must be host names separated by commas, or * (got ${shown})`);
  }
  const host = read('EMULATOR_HOST') ?? '127.0.0.1';
  const hostRefused = listenHostProblem('EMULATOR_HOST', 'EMULATOR_PORT', host);
  if (hostRefused !== undefined) problems.push(hostRefused);
  return {
    port,
    host,
    consumerKey: read('EMULATOR_CONSUMER_KEY') ?? DEFAULT_CONSUMER_KEY,
    consumerSecret: read('EMULATOR_CONSUMER_SECRET') ?? DEFAULT_CONSUMER_SECRET,
    seed: seed === 'none' ? 'none' : 'demo',
    ...(dataFile ? { dataFile } : {}),
    ...(publicOrigin ? { publicUrl } : {}),
    ...(allowedHosts?.length && badHost === undefined ? { allowedHosts } : {}),
    ...(rateLimitPerHour === undefined ? {} : { rateLimitPerHour }),
    // The request log is for tests and benchmarks, which start the emulator from code: nothing reads it here,
    // where it would hold up to 100,000 URLs of up to 16 KB each (refused requests included), 1.6 GB anyone could fill.
    requestLogLimit: 0,
  };
}

/**
 * An allowed name with an internationalized host (`bücher.example:4010`) in the ASCII form browsers send in `Host`
 * (`xn--bcher-kva.example:4010`), as `EMULATOR_PUBLIC_URL`'s is read; any other as it is, checked as it is.
 */
function asciiName(name: string): string {
  const [, host = '', port = ''] = /^(.*?)((?::\d*)?)$/.exec(name) ?? [];
  if (!/[\u0080-\uffff]/.test(host)) return name;
  const ascii = domainToASCII(host);
  return ascii === '' ? name : `${ascii}${port}`;
}

/** A host name, an IPv4 address or an IPv6 one in brackets, with or without a port a URL may carry (0–65535). */
function isHostAndPort(text: string): boolean {
  const match = /^(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(?::(\d{1,5}))?$/i.exec(text);
  return match !== null && (match[2] === undefined || Number(match[2]) <= 65_535);
}
