import { GraphQLScalarType, Kind } from 'graphql';
import { ErrorCode, gatewayError } from '../errors.ts';

/**
 * The first second whose ISO-8601 form no longer has the four-digit year DateTime promises (10000-01-01T00:00:00Z).
 * A time from it on is read as milliseconds: as seconds it would be written with an expanded year
 * (`+055840-11-08T…`), which the scalar's own parser refuses, while as milliseconds it is a time of this era,
 * from an upstream that sends milliseconds for seconds (the upstream parser takes times up to 8.64e12,
 * JavaScript's last date). A fraction of the second before it (the parser takes fractional seconds) is still
 * in the year 9999.
 */
const FIRST_FIVE_DIGIT_YEAR_SECOND = 253_402_300_800;

/** Upstream Unix seconds as the schema's DateTime; `0`/`false` mean "not set" upstream and become null. */
export function fromUnixSeconds(seconds: number | false | undefined): string | null {
  if (!seconds) return null;
  return new Date(seconds >= FIRST_FIVE_DIGIT_YEAR_SECOND ? seconds : seconds * 1000).toISOString();
}

/**
 * The same for a time the schema cannot leave null (`createdAt: DateTime!`, the contract's): none becomes the
 * Unix epoch, as the field's description says. An error instead would blank the whole account or token (its
 * parent) for want of one date the upstream always sets on what it made.
 */
export function requiredFromUnixSeconds(seconds: number | false | undefined): string {
  return fromUnixSeconds(seconds) ?? EPOCH;
}

const EPOCH = new Date(0).toISOString();

const ISO_8601 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:Z|[+-](\d{2}):(\d{2}))$/;

function parseDateTime(value: unknown): string {
  const fields = typeof value === 'string' ? ISO_8601.exec(value) : null;
  if (fields === null || !existingInstant(fields.slice(1).map(Number))) {
    throw gatewayError(ErrorCode.BAD_USER_INPUT, 'DateTime must be an ISO-8601 string such as 2014-01-16T20:41:14Z');
  }
  return new Date(fields[0]).toISOString();
}

/**
 * Whether a date and time as written (year, month, day, hour, minute, second, and the offset's hours and
 * minutes, NaN when it is `Z`) name one that exists. `Date.parse` rolls a day past its month's last over into
 * the next month (the 30th of February is the 2nd of March) instead of refusing it, so the day is checked
 * against its month here; a leap second (`:60`) is refused, as JavaScript's dates have none.
 */
function existingInstant([year = NaN, month = NaN, day = NaN, hour = NaN, minute = NaN, second = NaN, offsetHours = NaN, offsetMinutes = NaN]: number[]): boolean {
  // setUTCFullYear, not Date.UTC, which reads years 0–99 as 1900–1999 (and 0000, a leap year, as 1900, none).
  const daysInMonth = new Date(new Date(0).setUTCFullYear(year, month, 0)).getUTCDate();
  const offsetFits = Number.isNaN(offsetHours) || (offsetHours <= 23 && offsetMinutes <= 59);
  return month >= 1 && month <= 12 && day >= 1 && day <= daysInMonth && hour <= 23 && minute <= 59 && second <= 59 && offsetFits;
}

/** No description here: the SDL's (schema/scalars.graphql) is the one served and published, and this one would replace it. */
export const DateTime = new GraphQLScalarType<string, string>({
  name: 'DateTime',
  // Resolvers already produce the ISO string (see fromUnixSeconds); anything else is a bug, not data.
  serialize: (value) => {
    if (typeof value !== 'string') throw new TypeError('DateTime resolvers must return an ISO-8601 string');
    return value;
  },
  parseValue: parseDateTime,
  parseLiteral: (ast) => parseDateTime(ast.kind === Kind.STRING ? ast.value : undefined),
});
