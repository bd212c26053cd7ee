import type { ServerResponse } from 'node:http';

/**
 * The cap on GraphQL requests the gateway holds at once (`MAX_OPERATIONS_IN_FLIGHT`), from the moment one
 * reaches `/graphql` until its answer is sent or its client gone. Each holds its body (up to MAX_BODY_BYTES),
 * its operation's objects and, at the end, its answer (up to MAX_ANSWER_BYTES) for as long as the upstream
 * takes; without a cap, a burst larger than the upstream can serve piles up until the operations' deadlines,
 * in memory. Past the cap a request is refused at once, before its token is checked or its body read, which
 * costs next to nothing, and its client is told to come back (503 with Retry-After).
 */
export class OperationAdmission {
  #inFlight = 0;

  constructor(readonly limit: number) {}

  /** Counts the request in until its response closes; false, counting nothing, when `limit` are held already. */
  admit(res: ServerResponse): boolean {
    if (this.#inFlight >= this.limit) return false;
    this.#inFlight += 1;
    // 'close' comes once for every response: answered, cut by a shutdown, or its client gone (connections.ts
    // closes those Node leaves open, queued behind another on a connection that dropped).
    res.once('close', () => {
      this.#inFlight -= 1;
    });
    return true;
  }
}
