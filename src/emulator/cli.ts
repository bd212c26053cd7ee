import { startEmulator } from './index.ts';

/**
 * `npm run emulator`: the emulator on its own, configured from the environment (see CONTRACT.md,
 * "The embedded emulator"). Prints one line on start; SIGINT/SIGTERM persist and exit 0.
 */

const DEFAULT_SECRET = 'dev-secret';

function fail(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(1);
}

function readPort(raw: string | undefined): number {
  if (raw === undefined || raw.trim() === '') return 4010;
  const text = raw.trim();
  const port = /^\d{1,5}$/.test(text) ? Number(text) : Number.NaN;
  if (!(port >= 0 && port <= 65_535)) fail(`EMULATOR_PORT must be an integer from 0 to 65535, got "${raw}"`);
  return port;
}

async function main(): Promise<void> {
  const env = process.env;
  const port = readPort(env.EMULATOR_PORT);
  const seed = env.EMULATOR_SEED?.trim() || 'demo';
  if (seed !== 'demo' && seed !== 'none') fail(`EMULATOR_SEED must be "demo" or "none", got "${seed}"`);
  const consumerKey = env.EMULATOR_CONSUMER_KEY || 'dev-key';
  const consumerSecret = env.EMULATOR_CONSUMER_SECRET || DEFAULT_SECRET;
  const dataFile = env.EMULATOR_DATA_FILE?.trim() || undefined;

  let emulator;
  try {
    emulator = await startEmulator({
      port,
      host: env.EMULATOR_HOST?.trim() || '127.0.0.1',
      consumerKey,
      consumerSecret,
      seed,
      ...(dataFile ? { dataFile } : {}),
    });
  } catch (error) {
    const err = error as NodeJS.ErrnoException;
    if (err.code === 'EADDRINUSE') fail(`Context.IO emulator: port ${port} is already in use (set EMULATOR_PORT, 0 picks a free one)`);
    if (err.code === 'EADDRNOTAVAIL' || err.code === 'ENOTFOUND') fail(`Context.IO emulator: cannot bind EMULATOR_HOST "${env.EMULATOR_HOST}"`);
    fail(err.message);
  }

  const shownSecret = consumerSecret === DEFAULT_SECRET ? DEFAULT_SECRET : '(hidden)';
  process.stdout.write(`Context.IO emulator listening at ${emulator.url} (consumer key ${consumerKey}, secret ${shownSecret})\n`);

  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    emulator.close().then(
      () => process.exit(0),
      (error: Error) => fail(`Context.IO emulator: error while closing: ${error.message}`),
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

void main();
