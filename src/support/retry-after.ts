/** `Retry-After`, both ways: the upstream's read as a wait, and the gateway's own waits rounded for its clients. */

/**
 * A wait in ms as the whole seconds a client is told (`Retry-After`, `extensions.retryAfter`, "in N s"):
 * rounded up, and at least 1, so a client that waits exactly that long is not refused again for the
 * fraction of a second left over. One rounding for every refusal that says when to come back: the budgets,
 * the upstream's pause and circuit, the key set's back-off, the emulator's rate limit.
 */
export function retryAfterSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

/** `Retry-After` in seconds or as an HTTP date, in milliseconds; undefined when absent or unreadable. */
export function parseRetryAfter(header: string | string[] | undefined): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  // Seconds (decimals tolerated), or an HTTP date in one of its three forms (RFC 9110): V8's Date.parse alone
  // reads "1.5" or "-1" as a date in 2001 (no wait at all), "x 2030" as 2030 and "120 (2 min)" as the year 120.
  let ms: number | undefined;
  if (/^\d+(\.\d+)?$/.test(trimmed)) ms = Number(trimmed) * 1000;
  else if (HTTP_DATE.test(trimmed)) {
    // asctime's form is in GMT too, without saying so: Date.parse would read it as local time.
    const date = Date.parse(trimmed.endsWith('GMT') ? trimmed : `${trimmed} GMT`);
    ms = Number.isNaN(date) ? undefined : date - Date.now();
  }
  // An hour is the quota's own window: a longer (or endless, or absurd) wait is taken as that.
  return ms === undefined ? undefined : Math.min(Math.max(0, ms), MAX_RETRY_AFTER_MS);
}

const MAX_RETRY_AFTER_MS = 3_600_000;

/** An HTTP date: IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), or the obsolete RFC 850 and asctime forms. */
const HTTP_DATE = new RegExp(
  [
    '^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \\d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \\d{4} \\d{2}:\\d{2}:\\d{2} GMT$',
    '^(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), \\d{2}-(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)-\\d{2} \\d{2}:\\d{2}:\\d{2} GMT$',
    '^(Mon|Tue|Wed|Thu|Fri|Sat|Sun) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \\d]\\d \\d{2}:\\d{2}:\\d{2} \\d{4}$',
  ].join('|'),
);
