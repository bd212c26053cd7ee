/**
 * Each caller's state of one of the budgets (`CallerWriteBudget`, `CallerReadBudget`), made on a caller's
 * first call and forgotten once `idle` says forgetting it changes nothing: memory follows the callers of the
 * last hour, whoever called before.
 */
export class PerCaller<T> {
  readonly #states = new Map<string, T>();
  readonly #create: (now: number) => T;
  readonly #idle: (state: T, now: number) => boolean;
  #sweptAt = -Infinity;

  constructor(create: (now: number) => T, idle: (state: T, now: number) => boolean) {
    this.#create = create;
    this.#idle = idle;
  }

  /** `caller`'s state at `now` (ms), made if it has none. */
  of(caller: string, now: number): T {
    this.#sweep(now);
    let state = this.#states.get(caller);
    if (state === undefined) {
      state = this.#create(now);
      this.#states.set(caller, state);
    }
    return state;
  }

  /** Callers counted now. */
  get size(): number {
    return this.#states.size;
  }

  /** At most once a minute, forgets the idle callers. */
  #sweep(now: number): void {
    if (now - this.#sweptAt < SWEEP_INTERVAL_MS) return;
    this.#sweptAt = now;
    for (const [caller, state] of this.#states) {
      if (this.#idle(state, now)) this.#states.delete(caller);
    }
  }
}

const SWEEP_INTERVAL_MS = 60_000;
