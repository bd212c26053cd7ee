import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GraphQLError, Kind } from 'graphql';
import { DateTime, fromUnixSeconds, requiredFromUnixSeconds } from '../../src/resolvers/scalars.ts';

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

// No argument takes a DateTime yet, but the scalar is published: one that does, or a client's own tooling
// reading the schema, gets what its description promises.
test('a DateTime given as input is an ISO-8601 instant that exists, read as the same instant in UTC', () => {
  assert.equal(DateTime.parseValue('2014-01-16T20:41:14Z'), '2014-01-16T20:41:14.000Z');
  assert.equal(DateTime.parseValue('2014-01-16T22:41:14.5+02:00'), '2014-01-16T20:41:14.500Z');
  assert.equal(DateTime.parseValue('2016-02-29T23:59:59-00:30'), '2016-03-01T00:29:59.000Z');
  // A fraction of any length, as ISO-8601 allows and Python's isoformat() writes (microseconds): cut to milliseconds.
  assert.equal(DateTime.parseValue('2014-01-16T20:41:14.123456Z'), '2014-01-16T20:41:14.123Z');
  assert.equal(DateTime.parseValue('0000-02-29T00:00:00Z'), '0000-02-29T00:00:00.000Z');
  assert.equal(DateTime.parseLiteral({ kind: Kind.STRING, value: '2014-01-16T20:41:14Z' }), '2014-01-16T20:41:14.000Z');
  // Each a day, an hour or an offset no calendar or clock has: JavaScript's Date.parse rolls some of them
  // over (the 30th of February into the 2nd of March) instead of refusing them.
  for (const value of [
    '2014-02-30T00:00:00Z',
    '2015-02-29T00:00:00Z',
    '1900-02-29T00:00:00Z',
    '2014-04-31T10:00:00Z',
    '2014-13-01T00:00:00Z',
    '2014-00-10T00:00:00Z',
    '2014-01-00T00:00:00Z',
    '2014-01-01T24:00:00Z',
    '2014-01-01T23:60:00Z',
    '2014-01-01T23:59:60Z',
    '2014-01-01T00:00:00+24:00',
    '2014-01-01T00:00:00+05:60',
    '2014-01-16 20:41:14Z',
    '2014-01-16T20:41:14',
    '1389904874',
    // A five-digit year, or words before the date: not to be read as the year 2014 found in them.
    '12014-01-16T20:41:14Z',
    'on 2014-01-16T20:41:14Z',
    // Anything after the offset: a zone name (RFC 9557's suffix) or seconds of offset, not to be read as if absent.
    '2014-01-16T20:41:14Z[Europe/Paris]',
    '2014-01-16T20:41:14+01:00:30',
  ]) {
    assert.throws(
      () => DateTime.parseValue(value),
      (error: unknown) => error instanceof GraphQLError && error.extensions.code === 'BAD_USER_INPUT' && /ISO-8601/.test(error.message),
      value,
    );
  }
  // A variable's JSON may be any value: a list holding a date, which String() would write as the date, is none.
  for (const value of [1_389_904_874, ['2014-01-16T20:41:14Z']]) {
    assert.throws(() => DateTime.parseValue(value), GraphQLError, JSON.stringify(value));
  }
  assert.throws(() => DateTime.parseLiteral({ kind: Kind.INT, value: '1389904874' }), GraphQLError);
});

// Every resolver hands DateTime the ISO string fromUnixSeconds made: anything else (the upstream's raw seconds,
// a Date) is a bug, said as one, not passed on to clients as a number the schema does not promise.
test('a DateTime a resolver returns as anything but a string is refused as a bug, not sent on', () => {
  assert.equal(DateTime.serialize('2014-01-16T20:41:14.000Z'), '2014-01-16T20:41:14.000Z');
  for (const value of [1_389_904_874, new Date(0), null]) assert.throws(() => DateTime.serialize(value), TypeError, String(value));
});
