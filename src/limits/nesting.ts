import { fragmentsByName, type FragmentsByName } from '../graphql/document-fragments.ts';
import { Kind, type DocumentNode, type FragmentSpreadNode, type SelectionSetNode, type TypeNode } from 'graphql';

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
 * A fragment spread within itself (`spread`, through the fragments `via`): graphql-js reports it as invalid,
 * but its other rules follow such a cycle before that report stops anything, recursively. A ring of 100
 * fragments each spreading the next two (~1,400 tokens, within every default limit) ran its check that fields
 * can be merged out of stack.
 */
export interface FragmentCycle {
  readonly spread: string;
  readonly via: readonly string[];
  /** The spreads that make the cycle, for the error's locations. */
  readonly nodes: readonly FragmentSpreadNode[];
}

/** What keeps a document from being validated safely: nesting past the bound, or a cycle of fragments. */
export type NestingProblem = 'too deep' | FragmentCycle;

/**
 * The first reason `document` cannot be validated safely (`NestingProblem`), or `undefined`: nesting deeper than
 * `maximum` levels (`MAX_NESTING`), or fragments spreading each other in a cycle. Measured without recursion so
 * that measuring cannot itself run out of stack, and stopping at the first problem found. Every definition
 * counts, fragments no operation spreads too: graphql-js checks each for cycles, recursively.
 */
export function nestingProblem(document: DocumentNode, maximum: number): NestingProblem | undefined {
  for (const definition of document.definitions) {
    if (definition.kind === Kind.OPERATION_DEFINITION) {
      for (const variable of definition.variableDefinitions ?? []) {
        if (wrappers(variable.type) > maximum) return 'too deep';
      }
    }
  }
  const depths = new FragmentDepths(fragmentsByName(document), maximum);
  for (const definition of document.definitions) {
    // A fragment's own set, not the one its name finds: of two fragments of one name (which graphql-js
    // reports), the first is validated as deeply as the second.
    const executable = definition.kind === Kind.OPERATION_DEFINITION || definition.kind === Kind.FRAGMENT_DEFINITION;
    if (executable && depths.ofSet(definition.selectionSet) > maximum) return depths.cycle ?? 'too deep';
  }
  return undefined;
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
  /** The first spread of each fragment, for a cycle's locations. */
  readonly nodes: ReadonlyMap<string, FragmentSpreadNode>;
  /** Its deepest selection set, fragments it spreads aside. */
  readonly ownDepth: number;
}

/** The levels of a selection set (itself 1), each fragment's memoized, Infinity once past `maximum`. */
class FragmentDepths {
  readonly #fragments: FragmentsByName;
  readonly #maximum: number;
  readonly #depths = new Map<string, number>();
  /** The first fragment found spread within itself, through others or not: the measure stops there (Infinity). */
  cycle: FragmentCycle | undefined;

  constructor(fragments: FragmentsByName, maximum: number) {
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
   * stack already is a cycle: noted in `cycle`, and Infinity, so that measuring stops.
   */
  ofFragment(name: string): number {
    const known = this.#depths.get(name);
    if (known !== undefined) return known;
    const path: Array<{ name: string; spreads: Spreads; pending: string[] }> = [];
    const onPath = new Set<string>();
    const enter = (entered: string): void => {
      const spreads = spreadsIn(this.#fragments[entered]!.selectionSet, this.#maximum);
      path.push({ name: entered, spreads, pending: [...spreads.levels.keys()] });
      onPath.add(entered);
    };
    if (this.#fragments[name] === undefined) return 0;
    enter(name);
    while (path.length > 0) {
      const top = path[path.length - 1]!;
      const next = top.pending.pop();
      if (next !== undefined) {
        if (onPath.has(next)) {
          const from = path.findIndex((entry) => entry.name === next);
          const around = path.slice(from);
          this.cycle = {
            spread: next,
            via: around.slice(1).map((entry) => entry.name),
            nodes: around.map((entry, i) => entry.spreads.nodes.get(around[i + 1]?.name ?? next)!),
          };
          return Infinity;
        }
        if (this.#fragments[next] !== undefined && !this.#depths.has(next)) enter(next);
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
 * recursion; once a set is past `maximum`, that deepest set alone (`Infinity`: every spread, however deep).
 */
export function spreadsIn(set: SelectionSetNode, maximum: number): Spreads {
  const levels = new Map<string, number>();
  const nodes = new Map<string, FragmentSpreadNode>();
  let ownDepth = 0;
  const sets: Array<{ set: SelectionSetNode; level: number }> = [{ set, level: 1 }];
  for (let entry = sets.pop(); entry !== undefined; entry = sets.pop()) {
    ownDepth = Math.max(ownDepth, entry.level);
    if (ownDepth > maximum) return { levels: new Map(), nodes, ownDepth };
    for (const selection of entry.set.selections) {
      if (selection.kind === Kind.FRAGMENT_SPREAD) {
        const name = selection.name.value;
        levels.set(name, Math.max(levels.get(name) ?? 0, entry.level));
        if (!nodes.has(name)) nodes.set(name, selection);
      } else if (selection.selectionSet) {
        sets.push({ set: selection.selectionSet, level: entry.level + 1 });
      }
    }
  }
  return { levels, nodes, ownDepth };
}
