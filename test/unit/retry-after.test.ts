import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseRetryAfter, retryAfterSeconds } from '../../src/support/retry-after.ts';

describe('retryAfterSeconds', () => {
  it('rounds a wait up to whole seconds, so a client waiting that long is not refused again', () => {
    assert.equal(retryAfterSeconds(1000), 1);
    assert.equal(retryAfterSeconds(1001), 2);
    assert.equal(retryAfterSeconds(59_999.5), 60);
  });

  it('never tells a client to come back in 0 s, even for a wait of a few ms or one already over', () => {
    assert.equal(retryAfterSeconds(3), 1);
    assert.equal(retryAfterSeconds(0), 1);
    assert.equal(retryAfterSeconds(-5), 1);
  });
});

describe('parseRetryAfter', () => {
  it('reads a date already past as no wait at all, not as a negative one', () => {
    assert.equal(parseRetryAfter('Sun, 06 Nov 1994 08:49:37 GMT'), 0);
    assert.equal(parseRetryAfter('Sunday, 06-Nov-94 08:49:37 GMT'), 0);
    assert.equal(parseRetryAfter('Sun Nov  6 08:49:37 1994'), 0);
  });

  it('counts a date from the answer’s own Date when it has a readable one, else from this machine’s clock', () => {
    // Both by the upstream's clock, a day before this one's: a minute's wait, not none.
    assert.equal(parseRetryAfter('Sun, 06 Nov 1994 08:50:37 GMT', 'Sun, 06 Nov 1994 08:49:37 GMT'), 60_000);
    assert.equal(parseRetryAfter('Sun, 06 Nov 1994 08:50:37 GMT', ['Sun, 06 Nov 1994 08:49:37 GMT']), 60_000);
    // A Date that is no HTTP date is not taken as the upstream's clock.
    assert.equal(parseRetryAfter('Sun, 06 Nov 1994 08:50:37 GMT', 'yesterday'), 0);
    // Seconds are seconds, whatever the Date.
    assert.equal(parseRetryAfter('120', 'Sun, 06 Nov 1994 08:49:37 GMT'), 120_000);
  });

  it('reads a date in HTTP’s form that names no real day or time as unreadable, not as a wait of NaN ms', () => {
    for (const value of ['Sun, 99 Nov 2030 08:49:37 GMT', 'Sunday, 06-Nov-30 25:61:61 GMT', 'Sun Nov 99 08:49:37 2030']) {
      assert.equal(parseRetryAfter(value), undefined, value);
    }
  });

  it('reads seconds followed by anything else as unreadable, not as a wait of NaN ms', () => {
    // NaN would be no wait to the client, but RateLimitPause would keep it as its end: no later 429 would pause the key.
    for (const value of ['120 (2 min)', '30.5s', '1.5.3']) assert.equal(parseRetryAfter(value), undefined, value);
  });

  it('reads a date in one of HTTP’s forms with anything before or after it as unreadable, as V8 would not', () => {
    // Date.parse skips a word before a date and a comment after it: read so, these would be dates (past: 0 ms).
    for (const date of ['Sun, 06 Nov 1994 08:49:37 GMT', 'Sunday, 06-Nov-94 08:49:37 GMT', 'Sun Nov  6 08:49:37 1994']) {
      for (const value of [`x ${date}`, `${date} (local)`]) assert.equal(parseRetryAfter(value), undefined, value);
    }
  });

  it('reads an asctime date, which names no zone, in GMT as HTTP says, whatever the machine’s time zone', () => {
    const inAnHour = new Date(Math.ceil(Date.now() / 1000) * 1000 + 3_600_000 - 60_000);
    const [weekday, day, month, year, time] = /^(\w+), (\d+) (\w+) (\d+) ([\d:]+) GMT$/.exec(inAnHour.toUTCString())!.slice(1);
    const asctime = `${weekday} ${month} ${String(Number(day)).padStart(2, ' ')} ${time} ${year}`;
    const zone = process.env['TZ'];
    // Nine hours ahead of GMT: read as local time, the date would be eight hours past.
    process.env['TZ'] = 'Asia/Tokyo';
    try {
      const ms = parseRetryAfter(asctime);
      assert.ok(ms !== undefined && ms > 3_500_000 && ms < 3_600_000, `${asctime} read as ${ms} ms from now`);
    } finally {
      if (zone === undefined) delete process.env['TZ'];
      else process.env['TZ'] = zone;
    }
  });
});
