import { createHmac } from 'node:crypto';
import { argumentError } from '../errors.ts';
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from '../graphql/schema-shape.ts';
import type { ConnectionParent, EdgeParent } from './parents.ts';
import { shortened } from '../support/shortened.ts';

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
  /** Where the page starts: just after the position `after` names. */
  readonly offset: number;
  readonly cursorKind: string;
  /** The anchor `after` carries (see {@link ItemAnchors}), if any. */
  readonly after?: string;
}

/** `anchored`: the list's cursors name their items (see {@link ItemAnchors}); else a cursor that does is refused. */
export function pageWindow(cursorKind: string, first: number | null | undefined, after: string | null | undefined, anchored = false): PageWindow {
  return { size: pageSize(first), cursorKind, ...positionAfter(cursorKind, after, anchored) };
}

/**
 * Cursors that name their item, not only its position, in a list held whole (fetched whole each time): the
 * next page then starts after that very item even when items before it have gone meanwhile (a deleted connect token, or unused ones purged after a day), where a position
 * alone would skip as many. An anchor is the item's creation time (seconds) and a mark: a tag of the key
 * (an anchor written under another key, say before a restart with a secret made up at start, is read as a
 * position) and a keyed digest of the item's key, so that a cursor (which may end up in a URL or a log) does
 * not show it (a connect token is a credential).
 */
export class ItemAnchors<T> {
  readonly #tag: string;

  constructor(
    private readonly keyOf: (item: T) => string,
    private readonly createdOf: (item: T) => number,
    private readonly cursorKey: Buffer,
  ) {
    // Made once per key, not per operation: every page of a list builds its anchors, cursors asked for or not.
    let tag = keyTags.get(cursorKey);
    if (tag === undefined) keyTags.set(cursorKey, (tag = this.#digest('contextio-graphql: cursor anchors').slice(0, TAG_LENGTH)));
    this.#tag = tag;
  }

  /** The anchor of `item`'s cursor. */
  of(item: T): string {
    return `${this.#secondOf(item)}.${this.#tag}${this.#digest(this.keyOf(item)).slice(0, DIGEST_LENGTH)}`;
  }

  /**
   * Where the page after the cursor of `anchor`, written for the item then at `index`, starts in `all`: after
   * that item, wherever it is now (looked for where it was, then before, then after: only the items of its
   * second are digested, at most {@link MAX_ANCHOR_DIGESTS}). That item gone: in a list in creation order,
   * oldest or newest first, at the first item created in its second or after it in that order (one of its
   * second already shown is shown again, rather than one not yet shown skipped); in any other order, or with
   * no creation time (0), at its position (the items after it have moved up by one at least).
   */
  offsetAfter(all: readonly T[], index: number, anchor: string): number {
    const dot = anchor.indexOf('.');
    const created = Number(anchor.slice(0, dot));
    if (!anchor.startsWith(this.#tag, dot + 1)) return index + 1; // another key's: its position is all it says
    const found = this.#find(all, index, created, anchor);
    if (found !== undefined) return found + 1;
    // Newest first, a position would skip as many items as were deleted before it.
    const order = created > 0 ? this.#creationOrder(all) : undefined;
    if (order !== undefined) {
      const next = all.findIndex((item) => order * (this.#secondOf(item) - created) >= 0);
      return next === -1 ? all.length : next;
    }
    return Math.min(index, all.length);
  }

  /** Where the item of `anchor` is now, if found: see `offsetAfter`. */
  #find(all: readonly T[], index: number, created: number, anchor: string): number | undefined {
    let digests = 0;
    const isAnchor = (i: number) => this.#secondOf(all[i]!) === created && ++digests <= MAX_ANCHOR_DIGESTS && this.of(all[i]!) === anchor;
    for (let i = Math.min(index, all.length - 1); i >= 0; i--) if (isAnchor(i)) return i;
    for (let i = index + 1; i < all.length; i++) if (isAnchor(i)) return i;
    return undefined;
  }

  /** 1: oldest first; -1: newest first; `undefined`: neither (a list of one second is taken as oldest first). */
  #creationOrder(all: readonly T[]): 1 | -1 | undefined {
    let oldestFirst = true;
    let newestFirst = true;
    for (let i = 1; i < all.length && (oldestFirst || newestFirst); i++) {
      const step = this.#secondOf(all[i]!) - this.#secondOf(all[i - 1]!);
      if (step < 0) oldestFirst = false;
      if (step > 0) newestFirst = false;
    }
    return oldestFirst ? 1 : newestFirst ? -1 : undefined;
  }

  /** Its creation time as a cursor holds it: whole seconds, none before 1970 (an upstream's odd value, too). */
  #secondOf(item: T): number {
    return Math.max(0, Math.trunc(this.createdOf(item)) || 0);
  }

  #digest(text: string): string {
    return createHmac('sha256', this.cursorKey).update(text).digest('base64url');
  }
}

/** Each cursor key's tag (see `ItemAnchors`). */
const keyTags = new WeakMap<Buffer, string>();

/** Characters of an anchor's key tag (24 bits) and item digest (72 bits). */
const TAG_LENGTH = 4;
const DIGEST_LENGTH = 12;
/** A creation second as the upstream's parser takes one (up to 8.64e12: 13 digits), written without leading zeros. */
const ANCHOR_PATTERN = `(?:0|[1-9]\\d{0,12})\\.[A-Za-z0-9_-]{${TAG_LENGTH + DIGEST_LENGTH}}`;
/**
 * The most items of one creation second a search for an anchor digests: more (tokens without a creation time
 * are all of second 0) and the anchor counts as gone, so that a cursor cannot make a request digest the
 * whole list.
 */
const MAX_ANCHOR_DIGESTS = 64;

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

/**
 * The page of a list held whole (an upstream list without paging), its cursors naming their items: it starts
 * after the item `after` names, wherever that is now (see {@link ItemAnchors.offsetAfter}).
 */
export function pageOfList<T>(all: readonly T[], window: PageWindow, anchors: ItemAnchors<T>): ConnectionParent<T> {
  const offset = window.after === undefined ? window.offset : anchors.offsetAfter(all, window.offset - 1, window.after);
  const end = offset + window.size;
  return { items: all.slice(offset, end), offset, hasNextPage: all.length > end, cursorKind: window.cursorKind, anchors };
}

/**
 * Cursors are opaque to clients: base64url of `<kind>:<index>`, or `<kind>:<index>:<anchor>` in a list whose
 * cursors name their items (see {@link ItemAnchors}; such a list still takes the first form, written before). The kind makes a cursor of one connection useless for
 * another instead of silently paging at a wrong offset.
 */
export function encodeCursor(kind: string, index: number, anchor?: string): string {
  return Buffer.from(anchor === undefined ? `${kind}:${index}` : `${kind}:${index}:${anchor}`).toString('base64url');
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

const POSITION = /^(\d{1,9})$/;
const ANCHORED_POSITION = new RegExp(`^(\\d{1,9})(?::(${ANCHOR_PATTERN}))?$`);

/** The offset of the first item after `after` (0 without a cursor), and the anchor it carries. */
function positionAfter(kind: string, after: string | null | undefined, anchored: boolean): { offset: number; after?: string } {
  if (after === null || after === undefined) return { offset: 0 };
  const decoded = Buffer.from(after, 'base64url').toString();
  const match = decoded.startsWith(`${kind}:`) ? (anchored ? ANCHORED_POSITION : POSITION).exec(decoded.slice(kind.length + 1)) : null;
  // Only cursors this gateway wrote: base64url decoding skips what it cannot read and `01` reads as 1, so
  // "close enough" strings would otherwise page somewhere nobody asked for.
  if (!match || encodeCursor(kind, Number(match[1]), match[2]) !== after) {
    // "With this filter" where the list takes one (accounts; the cursor names it); the tokens' lists, anchored, take none.
    throw argumentError('after', `after is not a cursor of this list${anchored ? '' : ' with this filter'}: "${shortened(after, 64)}"`);
  }
  const offset = Number(match[1]) + 1;
  return match[2] === undefined ? { offset } : { offset, after: match[2] };
}

/** The edges of a page, each with the cursor that continues after it. */
export function edgesOf<T>(page: ConnectionParent<T>): EdgeParent<T>[] {
  // Cursors made only when asked for: one naming its item costs a digest.
  return page.items.map((node, i) => ({
    node,
    get cursor() {
      return cursorOf(page, i);
    },
  }));
}

/** Relay's page info: the cursors of the first and last items, and whether items come before and after. */
export function pageInfoOf<T>(page: ConnectionParent<T>) {
  const empty = page.items.length === 0;
  return {
    hasNextPage: page.hasNextPage,
    get endCursor() {
      return empty ? null : cursorOf(page, page.items.length - 1);
    },
    hasPreviousPage: page.offset > 0,
    get startCursor() {
      return empty ? null : cursorOf(page, 0);
    },
  };
}

/**
 * The cursor of the page's `i`th item, made once per page: a connect token's costs a digest (~7 µs), and the
 * cost estimate weighs each `cursor` field as a plain one, so 98 aliases of it (or of `edges { cursor }`)
 * under a page of 99 tokens (cost 9,812) made 9,702 digests, ~65 ms of CPU for a 1.2 KB body.
 */
function cursorOf<T>(page: ConnectionParent<T>, i: number): string {
  let cursors = cursorsMade.get(page);
  if (cursors === undefined) cursorsMade.set(page, (cursors = []));
  return (cursors[i] ??= encodeCursor(page.cursorKind, page.offset + i, page.anchors?.of(page.items[i]!)));
}

/** The cursors made of each page, by item index (see `cursorOf`); a page's go with it. */
const cursorsMade = new WeakMap<object, string[]>();

/** The shared field resolvers of every `…Connection` type. */
export const connectionResolvers = {
  edges: edgesOf,
  nodes: <T>(page: ConnectionParent<T>) => page.items,
  pageInfo: pageInfoOf,
};
