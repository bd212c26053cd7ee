/**
 * The cap on GraphQL operations running at once (`MAX_OPERATIONS_IN_FLIGHT`), from the moment one has its
 * body and its caller's identity until its answer is made. Each holds its objects and its upstream calls for
 * as long as the upstream takes; without a cap, a burst larger than the upstream can serve piles up, in memory
 * and in the upstream client's queue, until the operations' deadlines. Past the cap an operation is refused
 * before it runs, and its client told to come back (503 with Retry-After).
 *
 * Not counted: a request whose body is still arriving (bounded by MAX_BODY_BYTES and the time a request may
 * take to arrive, and all of them by BodyAdmission below), and an answer on its way to its client (bounded by
 * MAX_ANSWER_BYTES and the stall timeout, and all of them by AnswerAdmission below), so that slow clients, or
 * ones without a valid token, cannot hold places that others need.
 */
export class OperationAdmission {
  #running = 0;

  constructor(readonly limit: number) {}

  /** A place for one operation, or undefined when `limit` run already; what it returns gives the place back (once, however often called). */
  enter(): (() => void) | undefined {
    if (this.#running >= this.limit) return undefined;
    this.#running += 1;
    return givenBackOnce(() => (this.#running -= 1));
  }
}

/**
 * The cap on the bytes of request bodies the gateway holds at once while they arrive
 * (`MAX_BODY_BYTES_IN_FLIGHT`), each from when it means to read one until the body is parsed. MAX_BODY_BYTES
 * bounds one body, and the request's receive timeout how long it is held, but not how many are held: 2,000
 * clients each sending all but the last byte of a 1 MiB body held 2 GB, for as long as they kept sending
 * more within the timeout, on a connection each. Past the cap a body is refused before any of it is read
 * (503 with Retry-After), so that a client waiting for `100 Continue` never uploads it.
 */
export class BodyAdmission {
  #held = 0;

  constructor(readonly limit: number) {}

  /** Room for a body of `bytes`, or undefined when the bodies held would then pass `limit`; what it returns gives the room back (once, however often called). */
  enter(bytes: number): (() => void) | undefined {
    if (this.#held + bytes > this.limit) return undefined;
    this.#held += bytes;
    return givenBackOnce(() => (this.#held -= bytes));
  }
}

/**
 * The cap on the bytes of answers the gateway holds for clients that have not taken them
 * (`MAX_ANSWER_BYTES_IN_FLIGHT`), each from when it is written to its response until all of it has left the
 * process (Node keeps the whole answer, encoded, until the kernel has taken its last byte) or its response
 * closes (the client gone, the answer cut for stalling, the connection cut at shutdown). MAX_ANSWER_BYTES
 * bounds one answer and the stall timeout how long it is held, but not how many are: 100 clients each running
 * a query with a ~5 MB answer and reading none of it held ~740 MiB of RSS.
 *
 * An answer's size is known only once it is made, and an answer made is sent whatever the total (its operation
 * ran; a mutation's writes are in it): past the cap a new operation is refused before it runs instead (503 with
 * Retry-After). The total passes the cap by at most the answers of the operations admitted before it was
 * reached, which MAX_OPERATIONS_IN_FLIGHT bounds, as it bounds what they held while they ran.
 */
export class AnswerAdmission {
  #held = 0;

  constructor(readonly limit: number) {}

  /** Whether the answers held take `limit` bytes or more: a new operation is not to run. */
  get full(): boolean {
    return this.#held >= this.limit;
  }

  /** Counts an answer of `bytes` as held; what it returns gives them back (once, however often called). */
  hold(bytes: number): () => void {
    this.#held += bytes;
    return givenBackOnce(() => (this.#held -= bytes));
  }
}

/** What gives back a place or room taken: `giveBack` runs on the first call only, however often it is called. */
function givenBackOnce(giveBack: () => void): () => void {
  let givenBack = false;
  return () => {
    if (givenBack) return;
    givenBack = true;
    giveBack();
  };
}
