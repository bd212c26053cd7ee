import { isUtf8 } from 'node:buffer';
import { errors, type Dispatcher } from 'undici';
import { ByteCollector } from '../support/byte-collector.ts';
import { jsonText } from '../support/json-text.ts';
import { parseRetryAfter } from '../support/retry-after.ts';
import { shortened } from '../support/shortened.ts';
import type { BreakerPermit, CircuitBreaker } from './breaker.ts';
import type { CallCancellation, CancelSignal } from './cancellation.ts';
import { decodingStages, UnknownCoding, type DecodingStage } from './content-coding.ts';
import { brokenSuccessOf, CONNECTION_ERROR_CODES, notHttpAnswerOf } from './failures.ts';
import type { RateLimitPause } from './rate-limit-pause.ts';
import { WITHHELD } from './redact.ts';
import type { Method } from './request.ts';

/** One attempt's request, signed. */
export interface UpstreamRequest {
  method: Method;
  /** From the origin, with the query string. */
  path: string;
  headers: Record<string, string>;
  body: string | undefined;
}

/** What a cancelled request is rejected (and its socket aborted) with. */
class CallCancelled extends Error {
  constructor() {
    super('The upstream call was cancelled');
  }
}

/**
 * The most of one upstream answer the client reads. The largest the gateway asks for are a page of 100
 * accounts (some hundreds of KB) and an unpaged token list, which grows with use; past this, an answer is a
 * misbehaving upstream, and reading it on would hold that much memory per call (and past 512 MiB fail as a
 * string too long to decode).
 */
const MAX_RESPONSE_BYTES = 32 * 1024 * 1024;

/**
 * A request whose turn for a connection came while a rate-limit pause (another call's 429) was on, or after
 * the circuit opened, or a half-open probe's after another was let through in its place: kept back unsent, its
 * call asks again as a new one would, and waits the pause out or fails at once. Sent, it would spend a request
 * of the key's quota on another 429, or add to the load of an upstream found failing (as a second probe, when
 * half-open).
 */
export class HeldBack extends Error {
  constructor() {
    super('The upstream call was held back by a rate-limit pause or an open circuit');
  }
}

/**
 * A success whose connection broke while its body was arriving: the call needs that body, so it fails as a
 * broken connection does (retried where that is safe; a write may have taken effect), said as what it was.
 * `code` is the connection's, by which it is retried.
 */
export class AnswerCutShort extends Error {
  readonly code: string | undefined;
  constructor(readonly status: number, cause: Error & { code?: string }) {
    super(`The connection broke during the upstream's HTTP ${status} answer`, { cause });
    this.code = cause.code;
  }
}

/**
 * An answer the client could not read whole: too large, or in a content coding it cannot undo. A success's is
 * a fault of that answer, the same on every attempt: not retried, and said as a body not the JSON expected is;
 * an error answer's status says what failed without it (`Exchanges.send`).
 */
export class UnreadableAnswer extends Error {
  constructor(
    readonly status: number,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }

  /**
   * What the call's error says, before whether a write may have taken effect, when not what any unexpected body
   * gets (the client's `#unexpectedBody`, with this message for its reason).
   */
  said(_action: string): string | undefined {
    return undefined;
  }

  /**
   * This error with the upstream's own words it carries (a coding it named) passed through `clear`, which
   * withholds words quoting the gateway's credentials (`redactedErrorBody`): an upstream may echo the request's
   * signature, or its key, in a header as in a body, and the caller's error and the log line would carry it.
   */
  clearedOf(_clear: (upstreamWords: string) => string): UnreadableAnswer {
    return this;
  }
}

/** Too large as it arrived, or once decoded: a small compressed answer may inflate to any size. */
class ResponseTooLarge extends UnreadableAnswer {
  constructor(status: number) {
    super(status, `The upstream's answer is larger than ${MAX_RESPONSE_BYTES / 1024 / 1024} MiB`);
  }
}

/**
 * A success whose bytes are not UTF-8 (a server writing Latin-1, whatever charset its Content-Type names: the
 * API's names none). Decoded anyway, each such byte would become U+FFFD, and a `René` be served as `Ren\uFFFD`
 * as if the upstream had sent that, as the gateway refuses a request body that is not UTF-8 rather than read it so.
 */
class NotUtf8Answer extends UnreadableAnswer {
  constructor(status: number) {
    super(status, 'its body is not UTF-8');
  }
}

/** In a content coding the client has no decoder for, though it named those it reads in `Accept-Encoding`. */
class UnreadableCoding extends UnreadableAnswer {
  /** As the upstream's header names it, cut short: a value the upstream writes, of any length, in an error and a log line. */
  readonly coding: string;

  /** `named`: as the upstream's header names it, whole (so that a credential at the cut is still found). */
  constructor(
    status: number,
    readonly named: string,
  ) {
    // Withheld, the note stands in for the name in words that read ("content coding not shown: … not supported" did not).
    const withheld = named === WITHHELD ? `its name ${WITHHELD.slice(1, -1)}` : undefined;
    super(status, withheld === undefined ? `content coding ${shortened(named, 100)} not supported` : `content coding not supported (${withheld})`);
    this.coding = withheld ?? shortened(named, 100);
  }

  override clearedOf(clear: (upstreamWords: string) => string): UnreadableAnswer {
    const cleared = clear(this.named);
    // Withheld whole, or with a connect token or a labelled signature cut out.
    return cleared === this.named ? this : new UnreadableCoding(this.status, cleared);
  }

  override said(action: string): string {
    return `The upstream answered in a content coding the gateway cannot read (${this.coding}) while ${action}`;
  }
}

/** In a content coding the client reads, but whose bytes do not decode (corrupt, or cut short). */
class UndecodableAnswer extends UnreadableAnswer {
  constructor(
    status: number,
    readonly coding: string,
    cause: Error,
  ) {
    super(status, `its ${coding} body could not be decoded (${shortened(cause.message, 200)})`, { cause });
  }

  override said(action: string): string {
    return `The upstream's ${this.coding} answer could not be decoded while ${action}`;
  }
}

/** An upstream answer, read whole. */
export interface UpstreamResponse {
  status: number;
  /** Its `Retry-After`, read once here for the pause, the backoff and the error alike. */
  retryAfterMs: number | undefined;
  /** A redirect's `Location`: where the upstream says it now is, for the configuration fault that logs it. */
  location: string | undefined;
  text: string;
  /** Why an error answer's body is not in `text` (too large, or not decoded): for its log line, the status deciding. */
  unread?: string;
}

/**
 * The upstream client's exchanges: each attempt's request dispatched through its pool, the answer read whole
 * (decoded, and capped at `MAX_RESPONSE_BYTES`), and when answers last came, which the client reads to tell
 * what a call that timed out says of the upstream. The pause and the breaker are the client's, read again as a
 * request's turn for a connection comes.
 */
export class Exchanges {
  readonly #pool: Dispatcher;
  readonly #origin: string;
  readonly #pause: RateLimitPause;
  readonly #breaker: CircuitBreaker;
  /**
   * When the upstream last began an answer (`performance.now()`, 1xx aside). A request that timed out though
   * the upstream answered others while it waited, and that never went out or went out with under half its
   * time left, spent that time behind the client's own requests (a gateway short of connections), which says
   * nothing about the upstream; with no answer meanwhile, it says the upstream is failing.
   */
  #lastAnswerAt = -Infinity;
  /**
   * When an answer last arrived whole (1xx aside). A request that went out with time to be answered and timed
   * out while others were answered whole is one slow resource (one account's mailbox hanging, say), not an
   * upstream down: counting it would let one caller's request pause every caller's calls.
   */
  #lastAnswerEndAt = -Infinity;

  constructor(pool: Dispatcher, origin: string, pause: RateLimitPause, breaker: CircuitBreaker) {
    this.#pool = pool;
    this.#origin = origin;
    this.#pause = pause;
    this.#breaker = breaker;
  }

  get lastAnswerAt(): number {
    return this.#lastAnswerAt;
  }

  get lastAnswerEndAt(): number {
    return this.#lastAnswerEndAt;
  }

  /**
   * One request through the pool, its answer read whole: undici's `dispatch` with a handler of our own, so
   * that a cancelled call settles at once, even while its request still waits in the pool's queue (it is
   * then dropped when its turn comes, never sent). `permit`: the breaker's, so that a call let through while
   * the circuit was closed is held back if it has opened by the time a connection is free, and a probe if
   * another has taken its place (see `CircuitBreaker.mayGoOut`). `signal`: the
   * caller's, named by the line saying a 429 paused the key.
   */
  send(
    options: UpstreamRequest,
    permit: BreakerPermit,
    cancellation: CallCancellation,
    signal: CancelSignal | undefined,
    onSent: () => void,
  ): Promise<UpstreamResponse> {
    return new Promise((resolve, reject) => {
      if (cancellation.reason !== undefined) {
        reject(new CallCancelled());
        return;
      }
      let settled = false;
      let abortRequest: ((reason: Error) => void) | undefined;
      // The decoders of a compressed answer, its bytes written to the first, the last's output collected.
      let decoding: readonly DecodingStage[] = [];
      const settle = (error: Error | undefined, response?: UpstreamResponse) => {
        if (settled) return;
        settled = true;
        cancellation.onCancel = undefined;
        for (const { stream } of decoding) stream.destroy();
        // An error answer whose body could not be read (too large, in a coding not read, not decoding) was still
        // answered: its status and headers say what failed (a 404, a 429 and its Retry-After), as for an error
        // body that is not JSON. Its body only ever refines that, and is only logged.
        if (error instanceof UnreadableAnswer && status >= 300) resolve({ ...answer(''), unread: error.message });
        // So was one whose body the call's end cut short (its deadline, its operation's, its caller gone), as
        // one whose connection broke during its body (`onResponseError`): a 429 whose body stalls is the rate
        // limit, not an upstream that did not answer.
        else if (error instanceof CallCancelled && status >= 300) resolve(answer());
        // A success whose body the call's end cut short came too: its status says so (a write answered 2xx was
        // made), where "no answer" would be false. Still the call's end that failed it.
        else if (error instanceof CallCancelled && status !== 0) reject(new AnswerCutShort(status, error));
        else if (error) reject(error);
        else resolve(response!);
      };
      cancellation.onCancel = () => {
        const error = new CallCancelled();
        abortRequest?.(error);
        settle(error);
      };
      let body: ByteCollector | undefined;
      /** A compressed answer's bytes received, counted apart from the decoded ones `body` holds: both stay under the cap. */
      let received = 0;
      let status = 0;
      let retryAfterMs: number | undefined;
      let location: string | string[] | undefined;
      const answer = (text = body === undefined ? '' : jsonText(body.bytes())): UpstreamResponse => ({
        status,
        retryAfterMs,
        location: Array.isArray(location) ? location[0] : location,
        text,
      });
      /** Settles with the answer read whole; a success's body, which the call reads, must be UTF-8 (an error's only refines its status). */
      const settleWhole = () => {
        const bytes = body?.bytes();
        if (status < 300 && bytes !== undefined && !isUtf8(bytes)) settle(new NotUtf8Answer(status));
        else settle(undefined, answer(bytes === undefined ? '' : jsonText(bytes)));
      };
      this.#pool.dispatch(
        { origin: this.#origin, ...options },
        {
          onRequestStart: (controller) => {
            // Cancelled, or held back by a pause begun or a circuit opened meanwhile, while it waited for a
            // connection: it never goes out. Thrown, not `abort()`ed: undici then fails this request alone, where
            // an abort destroys the healthy connection it was given.
            if (settled) throw new CallCancelled();
            if (this.#pause.leftMs() > 0 || !this.#breaker.mayGoOut(permit)) throw new HeldBack();
            abortRequest = (reason) => controller.abort(reason);
            onSent();
          },
          onResponseStart: (controller, statusCode, headers) => {
            if (statusCode < 200) return; // 1xx: the real answer follows
            this.#lastAnswerAt = performance.now();
            status = statusCode;
            retryAfterMs = parseRetryAfter(headers['retry-after'], headers['date']);
            // The key is paused as soon as a 429 says so, its body still to come: a body that stalls must not
            // leave the other calls spending requests on more 429s meanwhile.
            if (statusCode === 429) this.#pause.begin(retryAfterMs, signal);
            if (statusCode < 400) location = headers['location'];
            // Refused before reading when it says it is too large; else counted as it arrives (below).
            const declared = Number(headers['content-length']);
            if (declared > MAX_RESPONSE_BYTES) return controller.abort(new ResponseTooLarge(status));
            try {
              decoding = decodingStages(headers['content-encoding']);
            } catch (error) {
              if (!(error instanceof UnknownCoding)) throw error;
              return controller.abort(new UnreadableCoding(status, error.coding));
            }
            // Its declared size is the encoded one when it is compressed: no guide to the decoded size.
            const collected = new ByteCollector(MAX_RESPONSE_BYTES, decoding.length === 0 ? declared : undefined);
            body = collected;
            const last = decoding.at(-1);
            if (last === undefined) return;
            // Stopped once the decoded bytes pass the cap: a small "bomb" (40 MiB of zeros gzipped is 40 KB) is
            // never inflated further. Settled at once, as its connection may have delivered all its bytes.
            const refuse = (error: Error) => {
              controller.abort(error);
              settle(error);
            };
            last.stream.on('data', (decoded: Buffer) => {
              if (!collected.add(decoded)) refuse(new ResponseTooLarge(status));
            });
            last.stream.once('end', settleWhole);
            for (const { coding, stream } of decoding) stream.once('error', (error) => refuse(new UndecodableAnswer(status, coding, error)));
          },
          onResponseData: (controller, chunk) => {
            const first = decoding[0]?.stream;
            // Given up on at once past the cap: the connection is closed, the rest never read.
            if (first === undefined) {
              if (body !== undefined && !body.add(chunk)) controller.abort(new ResponseTooLarge(status));
              return;
            }
            received += chunk.length;
            if (received > MAX_RESPONSE_BYTES) return controller.abort(new ResponseTooLarge(status));
            // Read no faster than it decodes: the bytes waiting for the decoder stay a few chunks.
            if (!first.write(chunk)) {
              controller.pause();
              first.once('drain', () => controller.resume());
            }
          },
          onResponseEnd: () => {
            this.#lastAnswerEndAt = performance.now();
            // A compressed answer is settled once its last bytes are decoded (the last stage's 'end', above). An
            // empty body stays empty whatever its header says (a proxy's error page kept it): no decoder reads none.
            const first = decoding[0]?.stream;
            if (first === undefined || received === 0) settleWhole();
            else first.end();
          },
          onResponseError: (_controller, error) => {
            // An error answer whose connection broke during its body was still answered: its status and headers
            // say what failed (a 404, a 429 and its Retry-After, a refusal that took no effect), and its body is
            // only logged. Taken for no answer at all, a refused write would be said to have maybe taken effect,
            // a DELETE retried onto a 404 taken as done, and a 429 retried at once.
            if (status !== 0 && CONNECTION_ERROR_CODES.has((error as { code?: string }).code ?? '')) {
              if (status >= 300) settle(undefined, answer());
              else settle(new AnswerCutShort(status, error));
            }
            // So was one whose body's framing broke (a chunk size that does not parse): undici closes the connection
            // there, as when it breaks, and the body is as unreadable as one in a coding not read. A success's is an
            // answer that was not valid HTTP, as one whose headers broke, but with its status: the call needed that body.
            else if (status !== 0 && error instanceof errors.HTTPParserError) {
              settle(status >= 300 ? new UnreadableAnswer(status, `its body did not parse as HTTP (${error.code ?? 'no code'})`, { cause: error }) : brokenSuccessOf(error, status));
            } else settle((status === 0 ? notHttpAnswerOf(error) : undefined) ?? error);
          },
        },
      );
    });
  }
}
