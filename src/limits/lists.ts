import type { FieldNode, GraphQLResolveInfo } from 'graphql';
import { ErrorCode, gatewayError } from '../errors.ts';
import { COST, type OperationMeasure } from './measure.ts';

/** What the first list refused for its length tells the log. */
interface LongListRefusal {
  field: string;
  length: number;
  /** What the further items of the operation's long lists would have added to its cost with this list. */
  value: number;
  maximum: number;
}

/** Before `plan`, no list node is known: each item then counts its field. */
const UNMEASURED: ReadonlyMap<FieldNode, number> = new Map();

/**
 * The estimated cost assumes COST.listSize items in a list no `first` bounds (an account's sources and
 * connect tokens), and real lists can be far longer: an account's user can create thousands of connect
 * tokens, and each item repeats the work and the answer of the list's selection. So while the operation
 * runs, each such list longer than assumed adds what its further items cost, and a list that would take what
 * they add past `maximum` fails with `QUERY_TOO_COMPLEX` instead (its nearest nullable parent is null).
 *
 * What they add is counted apart from the estimate, so an operation near MAX_QUERY_COST (a full page of
 * accounts with their tokens) has the same room for long lists as a small one. Lists shorter than assumed
 * are not credited: what a list adds does not depend on which lists arrived before it, so whether an
 * operation fits does not depend on the order its upstream answers come in.
 */
export class ListLengthBudget {
  #itemCosts = UNMEASURED;
  #added = 0;
  #maximum = Infinity;
  #onFirstRefusal: ((refusal: LongListRefusal) => void) | undefined;

  /** Called once the operation is measured, before it runs; until then nothing is refused. */
  plan(measure: OperationMeasure, maximum: number, onFirstRefusal: (refusal: LongListRefusal) => void): void {
    this.#itemCosts = measure.assumedListItemCosts;
    this.#maximum = maximum;
    this.#onFirstRefusal = onFirstRefusal;
  }

  /** The list a field resolves to, once what its items past the assumed ones cost is within the budget. */
  charge<T>(info: GraphQLResolveInfo, items: T[]): T[] {
    const further = items.length - COST.listSize;
    if (further <= 0) return items;
    // The estimate gave each node of a merged field the merged item's cost. Once planned every list node is measured;
    // the fallback is for a list resolved before `plan`, which nothing refuses yet.
    let itemCost = 0;
    for (const node of info.fieldNodes) itemCost = Math.max(itemCost, this.#itemCosts.get(node) ?? COST.field);
    const value = this.#added + further * itemCost;
    if (value <= this.#maximum) {
      this.#added = value;
      return items;
    }
    const field = `${info.parentType.name}.${info.fieldName}`;
    this.#onFirstRefusal?.({ field, length: items.length, value, maximum: this.#maximum });
    this.#onFirstRefusal = undefined;
    throw gatewayError(
      ErrorCode.QUERY_TOO_COMPLEX,
      `The operation is too complex: ${field} has ${items.length} items where the estimate assumed ${COST.listSize}; ` +
        `the lists' further items would add ${value} to its cost, more than the maximum of ${this.#maximum} (twice MAX_QUERY_COST)`,
      undefined,
      { limit: 'LIST_LENGTHS', value, maximum: this.#maximum },
    );
  }
}
