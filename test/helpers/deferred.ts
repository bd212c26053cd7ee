/** A promise and what settles it: an answer the test gives when it chooses (Node 20 has no `Promise.withResolvers`). */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((settle) => (resolve = settle));
  return { promise, resolve };
}

/**
 * A gate a test server's answers pass through: open until `hold()` closes it, then each answer waits at `pass()`
 * until `release()` (the first to wait settles `arrived`, so the test knows a request is held).
 */
export function answerGate(): { hold(): { arrived: Promise<void>; release(): void }; pass(): Promise<void> } {
  let held: { released: Promise<void>; arrived: () => void } | undefined;
  return {
    hold() {
      const arrival = deferred();
      const released = deferred();
      held = { released: released.promise, arrived: () => arrival.resolve() };
      return {
        arrived: arrival.promise,
        release: () => {
          held = undefined;
          released.resolve();
        },
      };
    },
    async pass() {
      if (held === undefined) return;
      held.arrived();
      await held.released;
    },
  };
}
