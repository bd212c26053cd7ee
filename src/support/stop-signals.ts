/** Signals closer together than this are one: see `StopSignals`. */
export const REPEAT_SIGNAL_MS = 1_000;

/**
 * The signals that stop a process in order. SIGHUP, SIGQUIT and SIGUSR2 too: a terminal that closes sends SIGHUP,
 * a process manager's or container's stop signal may be SIGQUIT (nginx images use it), and nodemon restarts with
 * SIGUSR2; Node's default for each ends the process at once, every operation in flight cut, the emulator's last
 * change unsaved, and no line said.
 */
export const STOP_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR2'] as const;

/** What a stop signal asks of a process that stops in order (`npm start`, `npm run emulator`). */
export type StopRequest = 'stop' | 'repeat' | 'force';

/**
 * How a command reads the stop signals it gets. The first asks it to stop in order. The same signal once
 * more within a second is the same request (`repeat`, once): a terminal's Ctrl-C or a supervisor signalling
 * the process group reaches the process directly and again through npm, which passes it on. Any later
 * signal is an operator who will not wait for the orderly stop (`force`).
 */
export class StopSignals {
  #first: { signal: string; at: number } | undefined;
  #repeatTaken = false;

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** Whether a stop has been asked for: the first signal came. */
  get stopping(): boolean {
    return this.#first !== undefined;
  }

  read(signal: string): StopRequest {
    const first = this.#first;
    if (first === undefined) {
      this.#first = { signal, at: this.now() };
      return 'stop';
    }
    if (signal === first.signal && !this.#repeatTaken && this.now() - first.at < REPEAT_SIGNAL_MS) {
      this.#repeatTaken = true;
      return 'repeat';
    }
    return 'force';
  }

  /** Calls `on[request]` for each of the `STOP_SIGNALS` the process gets from now on. */
  listen(on: Record<StopRequest, (signal: NodeJS.Signals) => void>): void {
    for (const signal of STOP_SIGNALS) process.on(signal, () => on[this.read(signal)](signal));
  }
}

/** How long a forced stop waits for a save under way: long enough for a disk that works, bounded for one that hangs. */
export const FORCED_SAVE_WAIT_MS = 2_000;

/**
 * Exits with `code` once `saved` settles (the last change written, or its failure already reported), or after
 * `FORCED_SAVE_WAIT_MS` if it has not: a forced stop ends the process even when the save it would wait for
 * never ends.
 */
export function exitOnceSaved(saved: Promise<unknown>, code: number): void {
  setTimeout(() => process.exit(code), FORCED_SAVE_WAIT_MS);
  void saved.catch(() => undefined).finally(() => process.exit(code));
}
