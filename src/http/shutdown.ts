import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { messageOf, type Logger } from '../logging/logger.ts';
import { OperationDeadlineExceeded, type OperationScope } from '../upstream/cancellation.ts';
import { realTimer, unrefTimer, type WaitTimer } from '../support/wait-timer.ts';

export interface ShutdownOptions {
  logger: Logger;
  /** How long the listener stays open, with `/healthz` at 503, before it closes (GatewayOptions.shutdownDrainMs). */
  drainMs: number;
  /** How long in-flight operations may finish once the listener is closed (GatewayOptions.shutdownGraceMs). */
  graceMs: number;
  /**
   * The timer of the sequence's waits (the drain, the grace period, the cut a second after it, the wait for the
   * last log lines; GatewayOptions.shutdownTimer), for a test to end each when it chooses. Unset: real timers,
   * those after the drain unref'd so that they never keep a process alive on their own.
   */
  timer?: WaitTimer;
}

/**
 * The HTTP server's shutdown: whether it has begun (which `/healthz` and each answer's connection follow),
 * the operations it waits for, and the sequence that closes the server: drain, close, grace period, abort
 * what still runs, cut the connections, wait for the last log lines.
 */
export class Shutdown {
  readonly #logger: Logger;
  readonly #drainMs: number;
  readonly #graceMs: number;
  readonly #timer: WaitTimer | undefined;
  #begun = false;
  /** Set when the grace period ends: an operation starting from then on is stopped as it starts. */
  #graceOver = false;
  #connectionsCut = false;
  /** The operations being answered, to wait for (and at worst abort) on shutdown. */
  readonly #inFlight = new Set<OperationScope>();
  /**
   * Those of them whose answer is made, still being delivered to a client reading slowly: no longer running, so
   * not among the operations the grace period's end says it stops (its answer is cut a second later, if still
   * undelivered, and its line says `cutAtShutdown`).
   */
  readonly #answered = new WeakSet<OperationScope>();
  /**
   * The requests whose log line is still to come: those in flight, and those whose token is still being verified
   * (a key set fetch still out), which the cut can close too. The shutdown's last wait is for their lines.
   */
  readonly #unlogged = new Set<OperationScope>();
  /** The server's open connections: those that have sent nothing yet are closed by the shutdown's idle sweep. */
  readonly #connections = new Set<Socket>();
  /** Called, during shutdown, once the last operation's response has closed (its log line written). */
  #allClosed: (() => void) | undefined;

  constructor(options: ShutdownOptions) {
    this.#logger = options.logger;
    this.#drainMs = options.drainMs;
    this.#graceMs = options.graceMs;
    this.#timer = options.timer;
  }

  /**
   * Calls `callback` after `ms` by the injected timer, or else by a real one (unref'd when `unref`, as a wait
   * nothing else must outlive); returns what cancels it.
   */
  #after(ms: number, callback: () => void, unref: boolean): () => void {
    return (this.#timer ?? (unref ? unrefTimer : realTimer))(callback, ms);
  }

  /** Whether shutdown (or its drain) has begun: `/healthz` answers 503 and each answer closes its connection. */
  get begun(): boolean {
    return this.#begun;
  }

  /** Set when shutdown cuts the connections still open after its grace period. */
  get connectionsCut(): boolean {
    return this.#connectionsCut;
  }

  /**
   * In flight from now: a shutdown waits for the operation, then at worst aborts it. One starting once the
   * grace period is over (a request whose body came after it) is stopped at once, as one still running then
   * was: answered, what it asks of the upstream never sent. Run, its calls would go out after the gateway
   * stopped operations, and one slower than the cut a second later would leave its client no answer at all.
   */
  operationStarted(operation: OperationScope): void {
    this.#inFlight.add(operation);
    this.#unlogged.add(operation);
    if (this.#graceOver) this.#stop(operation, 'shutdown-over');
  }

  #stop(operation: OperationScope, cause: 'shutdown' | 'shutdown-over' = 'shutdown'): void {
    try {
      operation.abort(new OperationDeadlineExceeded(this.#graceMs, cause));
    } catch (error) {
      // One operation's cleanup failing must not leave the others running.
      this.#logger.error('aborting an operation at shutdown failed', { ...(operation.requestId === undefined ? {} : { requestId: operation.requestId }), error: messageOf(error) });
    }
  }

  /**
   * A request whose token is about to be checked: not in flight yet (neither counted nor stopped at the grace
   * period's end), but a cut closing its connection meanwhile still writes its line, which the shutdown waits for.
   */
  requestOpened(operation: OperationScope): void {
    this.#unlogged.add(operation);
  }

  /** The operation's answer is made (or its run failed): it runs no more, though its response may still be delivered. */
  operationAnswered(operation: OperationScope): void {
    this.#answered.add(operation);
  }

  /** The operation's response has closed (its log line written): a shutdown no longer waits for it. */
  operationClosed(operation: OperationScope): void {
    this.#inFlight.delete(operation);
    if (this.#unlogged.delete(operation) && this.#unlogged.size === 0) this.#allClosed?.();
  }

  /** A connection the server accepted: tracked until it closes. */
  connectionOpened(socket: Socket): void {
    this.#connections.add(socket);
    socket.once('close', () => this.#connections.delete(socket));
  }

  /**
   * Closes the connections that have not sent a byte (a browser's or a balancer's preconnected socket). Node
   * counts a connection active from its accept, so that its headers deadline applies: its idle sweep never
   * closes one, which held every shutdown to the end of its grace period. Called in the check phase, as that
   * sweep is: a first request already in the socket has been read by then, and its connection is spared.
   */
  #closeUnusedConnections(): void {
    for (const socket of this.#connections) if (socket.bytesRead === 0) socket.destroy();
  }

  /** Runs the sequence on `httpServer`; resolves once it is closed and the last operation lines are written. */
  async closeServer(httpServer: Server): Promise<void> {
    const logger = this.#logger;
    const inFlight = this.#inFlight;
    // From here /healthz answers 503 and each answer closes its connection (see GatewayResponse, connections.ts).
    this.#begun = true;
    if (this.#drainMs > 0) {
      logger.info('draining: /healthz answers 503, requests are still served, the listener stays open', { drainMs: this.#drainMs });
      await new Promise<void>((resolve) => this.#after(this.#drainMs, resolve, false));
    }
    // Node's close() also closes the connections it takes to be idle. One whose next request is already in
    // the socket, unread because the process was busy, looks idle until its data is read: deferred to the
    // check phase, after the poll phase reads what has arrived, the close spares it.
    await new Promise((resolve) => setImmediate(resolve));
    const closed = new Promise<void>((resolve) => httpServer.close(() => resolve()));
    // The cut's timer, once the grace period has set it: cancelled with the grace's when the server closes first.
    let cancelCut = (): void => {};
    const cancelGrace = this.#after(this.#graceMs, () => {
      this.#graceOver = true;
      const running = [...inFlight].filter((operation) => !this.#answered.has(operation)).length;
      if (running > 0) logger.warn('shutdown grace period over: aborting operations still running', { count: running });
      for (const operation of inFlight) this.#stop(operation);
      // An answer that still cannot be delivered a moment later (a client that stopped reading) is dropped.
      cancelCut = this.#after(
        1_000,
        () => {
          this.#connectionsCut = true;
          httpServer.closeAllConnections();
        },
        true,
      );
    }, true);
    // Kept-alive connections would keep the server open: each answer from now on closes its connection, and
    // one answered before shutdown began is closed here once it is idle, as is one that never sent a request.
    // Unref'd as the grace period's timers are: the connections it sweeps hold the process open themselves.
    const idle = setInterval(
      () =>
        setImmediate(() => {
          httpServer.closeIdleConnections();
          this.#closeUnusedConnections();
        }),
      50,
    ).unref();
    await closed;
    cancelGrace();
    cancelCut();
    clearInterval(idle);
    // A connection cut at the end reaches its response's 'close' (and its operation line) just after the
    // server's own close: a process exiting next must not lose those lines.
    if (this.#unlogged.size > 0) {
      let cancelWait = (): void => {};
      await new Promise<void>((resolve) => {
        this.#allClosed = resolve;
        cancelWait = this.#after(1_000, resolve, true);
      });
      cancelWait();
    }
  }
}
