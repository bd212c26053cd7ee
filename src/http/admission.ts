/**
 * The cap on GraphQL operations running at once (`MAX_OPERATIONS_IN_FLIGHT`), from the moment one has its
 * body and its caller's identity until its answer is made. Each holds its objects and its upstream calls for
 * as long as the upstream takes; without a cap, a burst larger than the upstream can serve piles up, in memory
 * and in the upstream client's queue, until the operations' deadlines. Past the cap an operation is refused
 * before it runs, and its client told to come back (503 with Retry-After).
 *
 * Not counted: a request whose body is still arriving (bounded by MAX_BODY_BYTES and the time a request may
 * take to arrive), and an answer on its way to its client (bounded by MAX_ANSWER_BYTES and the stall
 * timeout), so that slow clients, or ones without a valid token, cannot hold places that others need.
 */
export class OperationAdmission {
  #running = 0;

  constructor(readonly limit: number) {}

  /** A place for one operation, or undefined when `limit` run already; what it returns gives the place back (once, however often called). */
  enter(): (() => void) | undefined {
    if (this.#running >= this.limit) return undefined;
    this.#running += 1;
    let left = false;
    return () => {
      if (left) return;
      left = true;
      this.#running -= 1;
    };
  }
}
