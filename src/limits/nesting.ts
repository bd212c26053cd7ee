import { Kind, type DocumentNode, type SelectionSetNode, type TypeNode } from 'graphql';

/**
 * How deeply a document may nest (not a setting): selection sets inside each other, a named fragment's spread
 * counting as entering that fragment, and the list and non-null wrappers of a variable's type. graphql-js
 * validates nesting recursively: past ~800 levels of two identical selections (`{ A A }`, A = `a{a{…}}`), its
 * check that fields can be merged ran out of stack, and past ~4,000 fragments spreading each other its check
 * for fragment cycles did (fresh process, Node 20, graphql 16), both within what `MAX_QUERY_TOKENS`' maximum
 * lets through the parser. The bound leaves well over twice that room for stack already in use, colder code
 * and other Node versions, and is what `MAX_QUERY_DEPTH` may be raised to.
 */
export const MAX_NESTING = 300;

/**
 * Whether `document` nests deeper than `maximum` levels (`MAX_NESTING`), measured without recursion so that
 * measuring cannot itself run out of stack, and stopping as soon as the bound is passed. Every definition
 * counts, fragments no operation spreads too: graphql-js checks each for cycles, recursively. A cycle is
 * counted once round and left to graphql-js to report, unless the document has more than `maximum` fragments.
 */
export function nestsDeeperThan(document: DocumentNode, maximum: number): boolean {
  const fragments = new Map<string, SelectionSetNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition.selectionSet);
    if (definition.kind === Kind.OPERATION_DEFINITION) {
      for (const variable of definition.variableDefinitions ?? []) {
        if (wrappers(variable.type) > maximum) return true;
      }
    }
  }
  const depths = new FragmentDepths(fragments, maximum);
  for (const definition of document.definitions) {
    // A fragment's own set, not the one its name finds: of two fragments of one name (which graphql-js
    // reports), the first is validated as deeply as the second.
    const executable = definition.kind === Kind.OPERATION_DEFINITION || definition.kind === Kind.FRAGMENT_DEFINITION;
    if (executable && depths.ofSet(definition.selectionSet) > maximum) return true;
  }
  // Counted once round, a cycle may hide a longer path through its fragments than the levels counted, one
  // graphql-js's check for cycles may follow before it finds the cycle: past `maximum` fragments, where its
  // paths could be longer, a document with a cycle (refused by validation anyway) is refused here.
  return depths.sawCycle && fragments.size > maximum;
}

/** The list and non-null wrappers around a variable's named type, which graphql-js also reads recursively. */
function wrappers(type: TypeNode): number {
  let count = 0;
  for (let node = type; node.kind !== Kind.NAMED_TYPE; node = node.type) count++;
  return count;
}

/** A fragment's spreads, each with the level of the selection set it is spread in (the fragment's own is 1). */
interface Spreads {
  readonly levels: ReadonlyMap<string, number>;
  /** Its deepest selection set, fragments it spreads aside. */
  readonly ownDepth: number;
}

/** The levels of a selection set (itself 1), each fragment's memoized, Infinity once past `maximum`. */
class FragmentDepths {
  readonly #fragments: ReadonlyMap<string, SelectionSetNode>;
  readonly #maximum: number;
  readonly #depths = new Map<string, number>();
  /** Whether a fragment was found spread within itself, through others or not. */
  sawCycle = false;

  constructor(fragments: ReadonlyMap<string, SelectionSetNode>, maximum: number) {
    this.#fragments = fragments;
    this.#maximum = maximum;
  }

  ofSet(set: SelectionSetNode): number {
    const { levels, ownDepth } = spreadsIn(set, this.#maximum);
    let depth = ownDepth;
    for (const [name, level] of levels) depth = Math.max(depth, level + this.ofFragment(name));
    return depth;
  }

  /**
   * A fragment's levels, 0 for an unknown one (graphql-js reports it). Depth first over the spreads with a
   * stack of its own: a fragment's levels are known once those of every fragment it spreads are. One on the
   * stack already (a cycle) counts 0 where it is spread again.
   */
  ofFragment(name: string): number {
    const known = this.#depths.get(name);
    if (known !== undefined) return known;
    const path: Array<{ name: string; spreads: Spreads; pending: string[] }> = [];
    const onPath = new Set<string>();
    const enter = (entered: string): void => {
      const spreads = spreadsIn(this.#fragments.get(entered)!, this.#maximum);
      path.push({ name: entered, spreads, pending: [...spreads.levels.keys()] });
      onPath.add(entered);
    };
    if (!this.#fragments.has(name)) return 0;
    enter(name);
    while (path.length > 0) {
      const top = path[path.length - 1]!;
      const next = top.pending.pop();
      if (next !== undefined) {
        if (onPath.has(next)) this.sawCycle = true;
        else if (this.#fragments.has(next) && !this.#depths.has(next)) enter(next);
        continue;
      }
      let depth = top.spreads.ownDepth;
      for (const [spread, level] of top.spreads.levels) depth = Math.max(depth, level + (this.#depths.get(spread) ?? 0));
      // Past the bound the answer is known: the fragments still on the path, which spread this one, are deeper.
      if (depth > this.#maximum) return Infinity;
      this.#depths.set(top.name, depth);
      onPath.delete(top.name);
      path.pop();
    }
    return this.#depths.get(name)!;
  }
}

/**
 * The fragments `set` spreads, at the deepest level each is spread, and its deepest set, walked without
 * recursion; once a set is past `maximum`, that deepest set alone.
 */
function spreadsIn(set: SelectionSetNode, maximum: number): Spreads {
  const levels = new Map<string, number>();
  let ownDepth = 0;
  const sets: Array<{ set: SelectionSetNode; level: number }> = [{ set, level: 1 }];
  for (let entry = sets.pop(); entry !== undefined; entry = sets.pop()) {
    ownDepth = Math.max(ownDepth, entry.level);
    if (ownDepth > maximum) return { levels: new Map(), ownDepth };
    for (const selection of entry.set.selections) {
      if (selection.kind === Kind.FRAGMENT_SPREAD) {
        const name = selection.name.value;
        levels.set(name, Math.max(levels.get(name) ?? 0, entry.level));
      } else if (selection.selectionSet) {
        sets.push({ set: selection.selectionSet, level: entry.level + 1 });
      }
    }
  }
  return { levels, ownDepth };
}
