import { fragmentsByName, type FragmentsByName } from '../graphql/document-fragments.ts';
import { spreadsIn } from './nesting.ts';
import { Kind, type DocumentNode, type FieldNode, type SelectionSetNode } from 'graphql';

/**
 * Pairs of selections graphql-js's check that fields can be merged (OverlappingFieldsCanBeMergedRule) may
 * compare in one document, at most (not a setting). It compares, at each level of the answer, every two
 * fields of one response name, however many fragments and selection sets they come from, then their
 * selections a level down, merged the same way; and every two fragments spread into that level. Its work
 * grows with the square of such repeats, before any limit measured after validation can refuse the document:
 * within every default limit, 230 copies of `accounts { nodes { connectTokens { account { id } } } }` took
 * ~150 ms to validate, two chains of 165 fragments side by side ~100 ms, eight `account` each with eight
 * `connectTokens` each with eight `account` (64 fields, merged into 512 at the last level) ~130 ms, where a
 * frontend's page takes ~1 ms. Legitimate documents stay far below: fragments colocated by a frontend repeat
 * `id` and `__typename` a few dozen times at a level, a few hundred pairs each; this bound holds
 * validation's merge check to ~20 ms.
 */
export const MAX_MERGED_PAIRS = 10_000;

/** How far merging got: the pairs it counted, and the selections it visited to count them. */
export interface MergingWork {
  pairs: number;
  visited: number;
}

/**
 * The pairs graphql-js's merge check may compare in `document` (MAX_MERGED_PAIRS), counted level by level as
 * it merges them: at each level, for each response name the pairs of its fields, and the pairs of the distinct
 * fragments spread into the level (through inline fragments and other fragments too). Counting stops once the
 * pairs pass `maxPairs` or the selections visited pass `maxVisited`, so it costs at most the document and
 * `maxVisited`: a fragment spread at many levels is visited at each (a fragment within a level once, as
 * graphql-js compares it once). Counted from each operation and each fragment no definition spreads (or that a
 * later fragment of its name hides): a spread fragment's own levels are parts of those it is spread into, with
 * fewer pairs. Without recursion, as nestingProblem measures, which must have passed (no cycle: the walk
 * follows spreads).
 */
export function mergingWork(document: DocumentNode, maxPairs: number, maxVisited: number): MergingWork {
  const fragments = fragmentsByName(document);
  const spread = new Set<string>();
  const work: MergingWork = { pairs: 0, visited: 0 };
  for (const definition of document.definitions) {
    if (definition.kind !== Kind.OPERATION_DEFINITION && definition.kind !== Kind.FRAGMENT_DEFINITION) continue;
    for (const name of spreadsIn(definition.selectionSet, Infinity).levels.keys()) spread.add(name);
  }
  const levels: Level[] = [];
  for (const definition of document.definitions) {
    if (definition.kind === Kind.OPERATION_DEFINITION) levels.push({ sets: [{ set: definition.selectionSet, on: undefined }], oneType: true });
    if (definition.kind !== Kind.FRAGMENT_DEFINITION) continue;
    // A fragment that a later one of its name hides is spread nowhere (`...F` finds the last F, as in
    // graphql-js), yet graphql-js compares its fields all the same: 200 copies of a nested field in it,
    // behind `...F` and an F of one field, took ~120 ms to validate uncounted.
    const hidden = fragments[definition.name.value] !== definition;
    if (hidden || !spread.has(definition.name.value)) levels.push({ sets: [{ set: definition.selectionSet, on: definition.typeCondition.name.value }], oneType: true });
  }
  for (let level = levels.pop(); level !== undefined; level = levels.pop()) {
    const { fieldsByName, fragmentsSpread } = mergeLevel(level.sets, fragments, work);
    work.pairs += pairsOf(fragmentsSpread);
    for (const fields of fieldsByName.values()) {
      work.pairs += weightedPairs(fields, level.oneType);
      const below = fields.flatMap((field) => (field.node.selectionSet ? [{ set: field.node.selectionSet, on: undefined }] : []));
      if (below.length > 0) levels.push({ sets: below, oneType: level.oneType && new Set(fields.map(parentAndName)).size === 1 });
    }
    if (work.pairs > maxPairs || work.visited > maxVisited) return work;
  }
  return work;
}

/**
 * A pair of simple leaves (no arguments, no selections) of one field of one parent type costs graphql-js ~55 ns
 * against 1–3 µs for any other pair: it skips them without comparing (`isSimpleLeaf`). Counted as this share of a
 * pair, such repeats (`id` and `__typename` in each of many colocated fragments) cost what they do: 100
 * components each selecting `id __typename` on one account validate in ~5 ms.
 */
const SIMPLE_LEAF_PAIR_SHARE = 1 / 20;

/** One level of the answer: its selection sets, and whether all its fields outside a type condition share one parent type. */
interface Level {
  readonly sets: readonly SelectionSet[];
  readonly oneType: boolean;
}

/** A selection set, and the type condition it is under (`undefined`: the level's own type). */
interface SelectionSet {
  readonly set: SelectionSetNode;
  readonly on: string | undefined;
}

/** A field, and the type condition it is under. */
interface MergedField {
  readonly node: FieldNode;
  readonly on: string | undefined;
}

/** A field's parent type (its type condition, or the level's) and its name: fields alike in both are one field of the schema. */
function parentAndName(field: MergedField): string {
  return `${field.on ?? ''}.${field.node.name.value}`;
}

/**
 * The pairs of `fields` (one response name at one level) as graphql-js's work on them counts: each pair one,
 * but a pair of simple leaves of one field of one parent type `SIMPLE_LEAF_PAIR_SHARE`. Their parent type is
 * known alike when they are under one type condition, or under none in a level whose fields all come from one
 * type (`oneType`); otherwise (fields of one response name from different fields, a conflict) nothing is cheap.
 */
function weightedPairs(fields: readonly MergedField[], oneType: boolean): number {
  const alikeLeaves = new Map<string, number>();
  for (const field of fields) {
    const simpleLeaf = !field.node.selectionSet && (field.node.arguments?.length ?? 0) === 0;
    if (simpleLeaf && (field.on !== undefined || oneType)) alikeLeaves.set(parentAndName(field), (alikeLeaves.get(parentAndName(field)) ?? 0) + 1);
  }
  let cheap = 0;
  for (const count of alikeLeaves.values()) cheap += pairsOf(count);
  return pairsOf(fields.length) - cheap + Math.ceil(cheap * SIMPLE_LEAF_PAIR_SHARE);
}

function pairsOf(count: number): number {
  return (count * (count - 1)) / 2;
}

/**
 * The fields of one level of the answer made of `sets`, by response name, with inline fragments and named
 * fragments flattened into it (each named one once) under their type conditions, and how many distinct named
 * fragments were.
 */
function mergeLevel(
  sets: readonly SelectionSet[],
  fragments: FragmentsByName,
  work: MergingWork,
): { fieldsByName: Map<string, MergedField[]>; fragmentsSpread: number } {
  const fieldsByName = new Map<string, MergedField[]>();
  const entered = new Set<string>();
  const pending = [...sets];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    work.visited += next.set.selections.length;
    for (const selection of next.set.selections) {
      if (selection.kind === Kind.FIELD) {
        const name = (selection.alias ?? selection.name).value;
        const fields = fieldsByName.get(name);
        const field = { node: selection, on: next.on };
        if (fields) fields.push(field);
        else fieldsByName.set(name, [field]);
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        pending.push({ set: selection.selectionSet, on: selection.typeCondition?.name.value ?? next.on });
      } else if (!entered.has(selection.name.value)) {
        entered.add(selection.name.value);
        const fragment = fragments[selection.name.value];
        if (fragment) pending.push({ set: fragment.selectionSet, on: fragment.typeCondition.name.value });
      }
    }
  }
  return { fieldsByName, fragmentsSpread: entered.size };
}
