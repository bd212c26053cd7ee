import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fromUnixSeconds, requiredFromUnixSeconds } from '../../src/resolvers/scalars.ts';

test('an upstream time is shown as DateTime promises, a four-digit year, milliseconds sent for seconds included', () => {
  assert.equal(fromUnixSeconds(1_389_904_874), '2014-01-16T20:41:14.000Z');
  assert.equal(fromUnixSeconds(253_402_300_799), '9999-12-31T23:59:59.000Z');
  // The next second has a five-digit year as seconds: read as milliseconds, it is in 1978.
  assert.equal(fromUnixSeconds(253_402_300_800), '1978-01-11T21:31:40.800Z');
  // Read as seconds, 1.7e12 is the year 55840 (`+055840-11-08T…`, a form the scalar's own parser refuses); it
  // is an upstream sending milliseconds, which the parser takes (up to 8.64e12, JavaScript's last date).
  assert.equal(fromUnixSeconds(1_700_000_000_000), '2023-11-14T22:13:20.000Z');
  assert.equal(fromUnixSeconds(8.64e12), '2243-10-17T00:00:00.000Z');
  assert.equal(fromUnixSeconds(0), null);
  assert.equal(fromUnixSeconds(false), null);
  assert.equal(requiredFromUnixSeconds(0), '1970-01-01T00:00:00.000Z');
});
