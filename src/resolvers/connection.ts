import { createHmac } from 'node:crypto';
import { argumentError } from '../errors.ts';
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from '../schema-shape.ts';
import type { ConnectionParent, EdgeParent } from './parents.ts';

/** Checks `first` before any upstream call. */
function pageSize(first: number | null | undefined): number {
  const size = first ?? DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(size) || size < 1 || size > MAX_PAGE_SIZE) {
    throw argumentError('first', `first must be from 1 to ${MAX_PAGE_SIZE} (got ${size})`);
  }
  return size;
}

/** The part of a list a connection field asks for, from its `first` and `after`, checked before any upstream call. */
export interface PageWindow {
  readonly size: number;
  readonly offset: number;
  readonly cursorKind: string;
}

export function pageWindow(cursorKind: string, first: number | null | undefined, after: string | null | undefined): PageWindow {
  return { size: pageSize(first), offset: offsetAfter(cursorKind, after), cursorKind };
}

/**
 * How many items to ask an upstream page for: one more than asked tells whether another page follows. The
 * upstream's page stops at 100, where a full page has to be taken to mean "maybe more".
 */
export function upstreamLimit(window: PageWindow): number {
  return Math.min(window.size + 1, MAX_PAGE_SIZE);
}

/** The page, from the items an upstream page of `upstreamLimit(window)` returned. */
export function pageFromUpstream<T>(fetched: readonly T[], window: PageWindow): ConnectionParent<T> {
  return { items: fetched.slice(0, window.size), offset: window.offset, hasNextPage: fetched.length >= upstreamLimit(window), cursorKind: window.cursorKind };
}

/** The page of a list held whole (an upstream list without paging). */
export function pageOfList<T>(all: readonly T[], window: PageWindow): ConnectionParent<T> {
  const end = window.offset + window.size;
  return { items: all.slice(window.offset, end), offset: window.offset, hasNextPage: all.length > end, cursorKind: window.cursorKind };
}

/**
 * Cursors are opaque to clients: base64url of `<kind>:<index>`. The kind makes a cursor of one
 * connection useless for another instead of silently paging at a wrong offset.
 */
export function encodeCursor(kind: string, index: number): string {
  return Buffer.from(`${kind}:${index}`).toString('base64url');
}

/**
 * A cursor kind for a list under a filter: `<list>` when nothing filters it, else `<list>.<digest>` of the
 * filter's values, so a cursor only continues the list it came from. A digest keeps the filter's values (an
 * email address) from being read off the cursor and its length bounded; keyed (an HMAC under `key`), it also
 * keeps a guessed address from being checked against a cursor that leaked (into a log, a URL).
 */
export function filteredCursorKind(list: string, filterValues: readonly (string | boolean | undefined)[], key: Buffer): string {
  if (filterValues.every((value) => value === undefined)) return list;
  const digest = createHmac('sha256', key).update(JSON.stringify(filterValues.map((value) => value ?? null))).digest('base64url');
  return `${list}.${digest.slice(0, 12)}`;
}

/**
 * The cursor digests' key, derived from the consumer secret: unknown to callers, and the same on every
 * instance of the gateway using the same key pair, so a cursor continues on any of them and after a restart.
 */
export function cursorKeyFrom(consumerSecret: string): Buffer {
  return createHmac('sha256', consumerSecret).update('contextio-graphql: cursor filter digests').digest();
}

/** The offset of the first item after `after`; 0 without a cursor. */
function offsetAfter(kind: string, after: string | null | undefined): number {
  if (after === null || after === undefined) return 0;
  const decoded = Buffer.from(after, 'base64url').toString();
  const match = decoded.startsWith(`${kind}:`) ? /^(\d{1,9})$/.exec(decoded.slice(kind.length + 1)) : null;
  // Only cursors this gateway wrote: base64url decoding skips what it cannot read and `01` reads as 1, so
  // "close enough" strings would otherwise page somewhere nobody asked for.
  if (!match || encodeCursor(kind, Number(match[1])) !== after) {
    throw argumentError('after', `after is not a cursor of this list with this filter: "${after.slice(0, 64)}"`);
  }
  return Number(match[1]) + 1;
}

/** The edges of a page, each with the cursor that continues after it. */
export function edgesOf<T>(page: ConnectionParent<T>): EdgeParent<T>[] {
  return page.items.map((node, i) => ({ node, cursor: encodeCursor(page.cursorKind, page.offset + i) }));
}

/** Relay's page info: the cursors of the first and last items, and whether items come before and after. */
export function pageInfoOf<T>(page: ConnectionParent<T>) {
  const empty = page.items.length === 0;
  return {
    hasNextPage: page.hasNextPage,
    endCursor: empty ? null : encodeCursor(page.cursorKind, page.offset + page.items.length - 1),
    hasPreviousPage: page.offset > 0,
    startCursor: empty ? null : encodeCursor(page.cursorKind, page.offset),
  };
}

/** The shared field resolvers of every `…Connection` type. */
export const connectionResolvers = {
  edges: edgesOf,
  nodes: <T>(page: ConnectionParent<T>) => page.items,
  pageInfo: pageInfoOf,
};
