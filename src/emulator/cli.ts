import { DEFAULT_CONSUMER_SECRET, emulatorOptionsFromEnv, publicSecretWarning } from './config.ts';
import { startEmulator } from './index.ts';
import { describeListenFailure } from '../http/listen.ts';
import { messageOf } from '../logging/logger.ts';
import { onOneLine } from '../support/shortened.ts';
import { argumentsProblem, SETTINGS_REFUSED_EXIT_CODE, unknownSettings } from '../config/settings.ts';
import { exitOnceSaved, FORCED_SAVE_WAIT_MS, StopSignals } from '../support/stop-signals.ts';

/*
 * `npm run emulator`: the emulator on its own, configured from the environment (the README's
 * emulator table). Prints one line on start (refused settings: a line each and exit code 78, as the gateway's); SIGINT/SIGTERM (SIGHUP, SIGQUIT, SIGUSR2 too) persist and exit 0 (a second one, while a save
 * hangs, exits 1 without it).
 */

function fail(message: string, exitCode = 1): never {
  process.stderr.write(`${message}\n`);
  process.exit(exitCode);
}

async function main(): Promise<void> {
  // Its output piped to a reader that went away (EPIPE) must not stop the emulator serving.
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {});
  const refusedArguments = argumentsProblem(process.argv.slice(2), 'EMULATOR_PORT, EMULATOR_HOST and the other EMULATOR_* variables of docs/configuration.md');
  if (refusedArguments !== undefined) fail(`Context.IO emulator: ${refusedArguments}`, SETTINGS_REFUSED_EXIT_CODE);
  const env = process.env;
  const problems: string[] = [];
  const options = emulatorOptionsFromEnv(env, 4010, problems);
  // Each problem on its own line, named as the emulator's other lines are (beside a gateway's, in one terminal).
  if (problems.length > 0) fail(problems.map((problem) => `Context.IO emulator: ${problem}`).join('\n'), SETTINGS_REFUSED_EXIT_CODE);
  const { port, consumerKey, consumerSecret } = options;

  let emulator;
  try {
    // Said as the embedded one logs it (start.ts, at warn): the library's default says nothing, and a developer whose
    // callback endpoint failed, or whose address the emulator refuses, had no word of it. The message names the host only.
    const onSourceCallbackFailed = (error: Error) => void process.stderr.write(`Context.IO emulator: ${onOneLine(error.message)}\n`);
    emulator = await startEmulator({ ...options, onSourceCallbackFailed });
  } catch (error) {
    const listen = describeListenFailure(error, { host: options.host, port, hostVariable: 'EMULATOR_HOST', portVariable: 'EMULATOR_PORT' });
    // Other failures (a corrupt or unwritable data file) say what they are, "Context.IO emulator:" included.
    fail(listen === undefined ? onOneLine(messageOf(error)) : `Context.IO emulator: ${listen}`);
  }

  new StopSignals().listen({
    stop: () =>
      void emulator.close().then(
        () => process.exit(0),
        (error: Error) => fail(`Context.IO emulator: error while closing: ${error.message}`),
      ),
    repeat: () => undefined,
    // Closing waits for the data file's last save (and the answers waiting on it): a disk that hangs would
    // otherwise hold the emulator until it is killed, with no word of why.
    force: () => {
      process.stderr.write(`Context.IO emulator: second signal while closing: exiting now (a save under way gets ${FORCED_SAVE_WAIT_MS / 1000} s at most)\n`);
      exitOnceSaved(emulator.store.flush(), 1);
    },
  });
  // Only now: a signal sent on seeing this line before the handlers were installed would kill the
  // emulator outright, without saving EMULATOR_DATA_FILE.
  const shownSecret = consumerSecret === DEFAULT_CONSUMER_SECRET ? DEFAULT_CONSUMER_SECRET : '(hidden)';
  // Clients behind the proxy or in the container use the public address: the one to copy from this line.
  const published = emulator.publicUrl !== emulator.url ? `, reached at ${emulator.publicUrl}` : '';
  // A limit answers 429s that would otherwise surprise whoever tries the API: said where they will look.
  const limited = options.rateLimitPerHour === undefined ? '' : `; at most ${options.rateLimitPerHour} calls an hour (EMULATOR_RATE_LIMIT)`;
  process.stdout.write(`Context.IO emulator listening at ${emulator.url}${published} (consumer key ${consumerKey}, secret ${shownSecret})${limited}\n`);
  // A name holds what its environment put in it (a line break, a directional control): kept to one line.
  for (const line of unknownSettings(env, ['EMULATOR_'])) process.stderr.write(`Context.IO emulator: warning: ${onOneLine(line)}\n`);
  const warning = publicSecretWarning(options);
  if (warning !== undefined) process.stderr.write(`Context.IO emulator: warning: ${warning}\n`);
}

void main();
