/**
 * The timer of a wait a test may want to run by hand (the emulator's injected faults, the upstream client's
 * waits between attempts, the HTTP server's shutdown, stall watch and lingering close, the log's writes): calls `callback` after `ms` and returns what cancels it. Outside tests it is
 * `realTimer`, or `unrefTimer` for a wait that must not keep the process alive (the stall watch, the lingering
 * close, the shutdown's waits after its drain); a test passes its own to see each wait asked for, and how long,
 * and to end it when it chooses instead of waiting it out.
 */
export type WaitTimer = (callback: () => void, ms: number) => () => void;

/** The waits' timer outside tests: real time. */
export const realTimer: WaitTimer = (callback, ms) => {
  const timer = setTimeout(callback, ms);
  return () => clearTimeout(timer);
};

/** Real time that does not hold the process open on its own: for a wait on something that does (a connection). */
export const unrefTimer: WaitTimer = (callback, ms) => {
  const timer = setTimeout(callback, ms).unref();
  return () => clearTimeout(timer);
};
