/**
 * The settings' defaults, one set for a gateway started from the environment (src/config/index.ts, `npm start`)
 * and one started from code (`startGateway`, `UpstreamClient`), so that the two cannot drift apart.
 */
export const DEFAULTS = {
  /** Deadline of one upstream call, retries and queueing included. */
  upstreamTimeoutMs: 10_000,
  /**
   * Upstream requests in flight at once, per process. A page's accounts are asked for all at once (the
   * bench's fan-out page names 20; `first: 100` can name 100), so 256 lets a dozen bench fan-outs run
   * without queueing (at 64, ten of them queued behind each other and their p50 at 20 ms upstream latency
   * went from 45 to over 80 ms: bench/README.md, "Fan-out latency"). It stays bounded so that a burst cannot
   * open thousands of connections to the upstream; connections are opened only when needed and close after
   * 30 s idle.
   */
  upstreamMaxInFlight: 256,
  operationTimeoutMs: 30_000,
  shutdownGraceMs: 10_000,
  shutdownDrainMs: 0,
  breakerFailureThreshold: 5,
  breakerCooldownMs: 5_000,
  maxBodyBytes: 1024 * 1024,
  /**
   * Operations running at once, per process; past it one gets 503 (src/http/admission.ts). Far above what the
   * gateway serves in time: ~1,500 operations a second on 2 CPUs (bench/results.md), so 1,000 running is most
   * of a second of work queued at 0 ms upstream latency, or several seconds of the bench's fan-outs at 20 ms.
   * Each holds a few KB to a few MB, so the cap keeps a burst's memory to a few GB at worst instead of
   * whatever arrives within the operations' 30 s deadline.
   */
  maxOperationsInFlight: 1_000,
  /**
   * Bytes of request bodies held at once while they arrive, per process; past it a body is refused with 503
   * (src/http/admission.ts). Without it, 2,000 clients each sending all but the last byte of a 1 MiB body held
   * 2 GB. An operation's body takes a few KB (its variables at most 64 KB), so 128 MiB is thousands of
   * ordinary ones arriving at once, or 128 of the largest; the buffers they take stay within twice as much.
   */
  maxBodyBytesInFlight: 128 * 1024 * 1024,
  /**
   * Upstream writes a caller without the admin scope may make in any hour (0: not counted). A frontend user
   * links a mailbox with one connect token, and changes an account now and then: 60 leaves room for retries
   * and a busy session, while a day of a caller's connect tokens (they expire after 24 h unused), with every
   * value at its longest, stays below what makes the API key's unpaged token list too large to read (32 MiB;
   * docs/auth.md, "The budget of writes").
   */
  callerWritesPerHour: 60,
  /**
   * Upstream reads a caller without the admin scope may make an hour (0: not counted). The API key's quota
   * (5,000 calls an hour at the start) is everyone's: a frontend user's dashboard refreshed every 15 s with
   * 3 reads needs 720 an hour, while one caller can take at most a fifth of the key's (docs/auth.md, "The
   * budget of reads").
   */
  callerReadsPerHour: 1_000,
  /**
   * The largest answer sent. The limits bound how many fields an answer has, not how large the upstream's
   * values in them are: 64 MiB is far above any page the limits allow with ordinary values (the heaviest,
   * 100 accounts with their sources and tokens, is about 1 MB), and below what one slow client may hold.
   */
  maxAnswerBytes: 64 * 1024 * 1024,
  /**
   * Bytes of answers held at once for clients that have not taken them, per process; past it a new operation
   * is refused with 503 (src/http/admission.ts). Without it, 100 clients each running a query with a ~5 MB
   * answer and reading none of it held ~740 MiB of RSS until the stall timeout. An ordinary answer is a few KB
   * and leaves at once, so 256 MiB is thousands of them waiting for slow readers, or four of the largest
   * (maxAnswerBytes, which it never goes below: see maxAnswerBytesInFlightFor).
   */
  maxAnswerBytesInFlight: 256 * 1024 * 1024,
  /**
   * How long a client may take to send a whole request, headers and body (Node's own is 5 minutes: a client
   * trickling a body a byte at a time would hold a connection that long). Not a setting.
   */
  requestReceiveTimeoutMs: 30_000,
  /**
   * How long an idle keep-alive connection stays open for the client's next request. Node's own is 5 s: behind
   * a load balancer that keeps its connections to the gateway open longer (AWS's ALB: 60 s), the gateway closes
   * one just as the balancer sends a request down it, which the balancer answers with a 502. 72 s outlasts the
   * usual 60 s idle timeouts (Fastify's default, for the same reason).
   */
  keepAliveTimeoutMs: 72_000,
  /**
   * How long an answer may wait for its client to take any of it before the connection is cut. Not a setting.
   * The gateway sees a client's progress only when the kernel takes more of the answer, which on Linux waits
   * until a third of its send buffer (up to 4 MiB) has drained: at 30 s, a client reading 40 KB/s all along was
   * cut. Two minutes cut only clients slower than ~11 KB/s, and still free the memory of those that stopped.
   */
  answerStallTimeoutMs: 120_000,
} as const;

/**
 * MAX_ANSWER_BYTES_IN_FLIGHT's default beside a MAX_ANSWER_BYTES of `maxAnswerBytes`: at least one answer of
 * the largest size (MAX_ANSWER_BYTES goes up to 512 MiB), or that one answer, held, would refuse every operation.
 */
export function maxAnswerBytesInFlightFor(maxAnswerBytes: number): number {
  return Math.max(DEFAULTS.maxAnswerBytesInFlight, maxAnswerBytes);
}
