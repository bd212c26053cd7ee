import type { IncomingMessage, ServerResponse } from 'node:http';
import { dropAnswer, holdAnswer, sendError, sendHtml, sendJson } from './http.ts';
import type { WaitTimer } from '../support/wait-timer.ts';

/**
 * The emulator's test hooks around its API: the log of the requests it served, its in-flight counters, and
 * the faults a test or the benchmark injects (an error status, a wait, a hang, a dropped connection).
 */

export interface EmulatorRequestLogEntry {
  method: string;
  /** Path after the `/2.0` prefix, raw (still percent-encoded), without the query. */
  path: string;
  /** Raw query string without `?`. */
  query: string;
  /** Status answered; 0 when the request ended without an answer (a hang, or the client gave up). */
  status: number;
  /**
   * The request's `X-Request-Id`, when it carried one: the gateway sends its operation's, so that a test running
   * operations at once tells whose each request was.
   */
  requestId?: string;
  /** The request's W3C trace context headers, when it carried them: the gateway passes on its caller's. */
  traceparent?: string;
  tracestate?: string;
}

export interface FaultRule {
  /** Default: any method. */
  method?: string;
  /** Matched against {@link EmulatorRequestLogEntry.path}; a string must match exactly. */
  path: string | RegExp;
  /** Answer this status with `{"type":"error","value":"injected fault"}` instead of handling. */
  status?: number;
  /**
   * With `status`: answer it with an HTML page instead of the API's JSON error body, as a load balancer or
   * proxy in front of the API does (the gateway treats a 503 so answered as the API down, not a mailbox).
   */
  proxyPage?: boolean;
  /**
   * Answer this JSON (with `status`, default 200) instead of handling: a shape another Context.IO server has
   * sent that the emulator itself never produces, such as a used token's account as a bare id string.
   */
  body?: unknown;
  /** Sent as `Retry-After`: seconds, or the header as written (an HTTP date). */
  retryAfter?: number | string;
  /** Delay before handling or answering: concurrent requests then also queue for the emulator's one process. */
  latencyMs?: number;
  /**
   * Answer no sooner than this many milliseconds after the request arrived, handling it meanwhile: an upstream
   * whose every answer takes this long however many requests arrive at once, as a fleet of servers would, the
   * emulator's own work hidden inside the wait (unless it takes longer). Nothing is delayed before handling, so a
   * change is made when it arrives even if its answer never reaches the client.
   */
  answerAfterMs?: number;
  /** Never answer (until the client disconnects or the emulator closes). */
  hang?: boolean;
  /**
   * Close the connection instead of answering: before handling the request (nothing changes, as when a
   * connection breaks on the way in), or after (the change is made and its answer lost on the way back).
   */
  drop?: 'before-handling' | 'after-handling';
  /** Apply this many times, then stop; default forever. */
  times?: number;
}

/** The API requests served, in the order they ended, and how many are being handled now. */
export class RequestLog {
  readonly #limit: number;
  /**
   * Entries past the limit are dropped a tenth of it at a time: trimming on every request would copy the whole
   * log each time (~1 ms a request once full), throttling long benchmarks to ~900 requests/s.
   */
  readonly #trimAt: number;
  #entries: EmulatorRequestLogEntry[] = [];
  #inFlight = 0;
  #peakInFlight = 0;

  /** `limit`: the entries kept at most, the latest (0 keeps none). */
  constructor(limit: number) {
    this.#limit = limit;
    this.#trimAt = limit + Math.max(1, Math.floor(limit / 10));
  }

  /** Counts the request in flight until its response closes, then logs it with the status it was answered. */
  track(entry: EmulatorRequestLogEntry, res: ServerResponse): Promise<void> {
    this.#inFlight++;
    this.#peakInFlight = Math.max(this.#peakInFlight, this.#inFlight);
    // 'close' fires once the response is finished or the connection dropped, whichever comes first.
    return new Promise<void>((resolve) =>
      res.once('close', () => {
        this.#inFlight--;
        entry.status = res.writableFinished ? res.statusCode : 0;
        // None kept at a limit of 0: `slice(-0)` is the whole log, so trimming would keep every entry, copying them all.
        if (this.#limit > 0) this.#entries.push(entry);
        if (this.#entries.length >= this.#trimAt) this.#entries = this.#entries.slice(-this.#limit);
        resolve();
      }),
    );
  }

  get entries(): readonly EmulatorRequestLogEntry[] {
    return this.#entries.length > this.#limit ? this.#entries.slice(-this.#limit) : this.#entries;
  }

  clear(): void {
    this.#entries = [];
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  get peakInFlight(): number {
    return this.#peakInFlight;
  }

  resetPeak(): void {
    this.#peakInFlight = this.#inFlight;
  }
}

interface ActiveFault {
  rule: FaultRule;
  remaining: number;
}

/** The injected faults, each applied to the requests it matches until its `times` are used up. */
export class FaultRules {
  #active: ActiveFault[] = [];

  /** Adds a rule; returns a function that removes it. */
  add(rule: FaultRule): () => void {
    const active: ActiveFault = { rule, remaining: rule.times ?? Number.POSITIVE_INFINITY };
    if (active.remaining > 0) this.#active.push(active);
    return () => this.#remove(active);
  }

  clear(): void {
    this.#active = [];
  }

  /** The first rule matching the request, one of its times used up; undefined when none matches. */
  take(method: string, path: string): FaultRule | undefined {
    for (const active of this.#active) {
      const { rule } = active;
      if (rule.method && rule.method.toUpperCase() !== method) continue;
      if (typeof rule.path === 'string') {
        if (rule.path !== path) continue;
      } else {
        rule.path.lastIndex = 0;
        if (!rule.path.test(path)) continue;
      }
      active.remaining--;
      if (active.remaining <= 0) this.#remove(active);
      return rule;
    }
    return undefined;
  }

  #remove(active: ActiveFault): void {
    this.#active = this.#active.filter((f) => f !== active);
  }
}

/**
 * Applies `fault` to a request: its waits, then a hang, a dropped connection or an injected answer. Resolves
 * true when the fault has answered (or is to leave it unanswered), false when the API is to handle the request
 * (after a wait, or to have its answer held or dropped).
 */
export async function applyFault(fault: FaultRule, req: IncomingMessage, res: ServerResponse, timer: WaitTimer): Promise<boolean> {
  // The answer's wait runs from arrival, whatever handling takes; a request closed first has its wait cancelled.
  if (fault.answerAfterMs && fault.answerAfterMs > 0) res.once('close', timer(holdAnswer(res), fault.answerAfterMs));
  if (fault.latencyMs && fault.latencyMs > 0) {
    await delayUnlessClosed(timer, fault.latencyMs, res);
    if (res.destroyed || res.writableEnded) return true;
  }
  if (fault.hang) return true; // answered by nobody: ends when the client or close() drops the socket
  if (fault.drop === 'before-handling') {
    req.socket.destroy();
    return true;
  }
  if (fault.drop === 'after-handling') dropAnswer(res);
  const headers: Record<string, string> = fault.retryAfter === undefined ? {} : { 'Retry-After': String(fault.retryAfter) };
  if (fault.body !== undefined) {
    req.resume();
    sendJson(res, fault.status ?? 200, fault.body, headers);
    return true;
  }
  if (fault.status !== undefined) {
    req.resume();
    if (fault.proxyPage) sendHtml(res, fault.status, `<html><body><h1>${fault.status}</h1>injected fault</body></html>`, headers);
    else sendError(res, fault.status, 'injected fault', undefined, headers);
    return true;
  }
  return false;
}

/** Waits `ms` on `timer`, returning early if the response closes meanwhile (client gone or emulator closing). */
function delayUnlessClosed(timer: WaitTimer, ms: number, res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      cancel();
      res.off('close', done);
      resolve();
    };
    const cancel = timer(done, ms);
    res.once('close', done);
  });
}
