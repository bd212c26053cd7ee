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

/**
 * `Retry-After` in seconds or as an HTTP date, in milliseconds; undefined when absent or unreadable. A date is
 * counted from the answer's own `Date` (`sentAt`) when it has one: both are the upstream's clock, so a gateway
 * clock a few minutes off (the upstream takes signatures up to 300 s off) does not read "in a minute" as past
 * (no pause, and a retry at once spending the quota on another 429) or as minutes more than it says.
 */
export function parseRetryAfter(header: string | string[] | undefined, sentAt?: string | string[]): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  // Seconds (decimals tolerated), or an HTTP date in one of its three forms (RFC 9110): V8's Date.parse alone
  // reads "1.5" or "-1" as a date in 2001 (no wait at all), "x 2030" as 2030 and "120 (2 min)" as the year 120.
  let ms: number | undefined;
  if (/^\d+(\.\d+)?$/.test(trimmed)) ms = Number(trimmed) * 1000;
  else {
    const date = httpDate(trimmed);
    ms = date === undefined ? undefined : date - (httpDate((Array.isArray(sentAt) ? sentAt[0] : sentAt)?.trim()) ?? Date.now());
  }
  // An hour is the quota's own window: a longer (or endless, or absurd) wait is taken as that.
  return ms === undefined ? undefined : Math.min(Math.max(0, ms), MAX_RETRY_AFTER_MS);
}

/** An HTTP date in one of its three forms (RFC 9110) as Unix ms; undefined for anything else. */
function httpDate(value: string | undefined): number | undefined {
  if (value === undefined || !HTTP_DATE.test(value)) return undefined;
  // asctime's form is in GMT too, without saying so: Date.parse would read it as local time.
  const date = Date.parse(value.endsWith('GMT') ? value : `${value} GMT`);
  return Number.isNaN(date) ? undefined : date;
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
