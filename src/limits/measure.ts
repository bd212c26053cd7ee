import {
  getNamedType,
  getVariableValues,
  getNullableType,
  isCompositeType,
  isListType,
  Kind,
  SchemaMetaFieldDef,
  TypeMetaFieldDef,
  TypeNameMetaFieldDef,
  type ArgumentNode,
  type DirectiveNode,
  type DocumentNode,
  type FieldNode,
  type InlineFragmentNode,
  type GraphQLArgument,
  type GraphQLCompositeType,
  type GraphQLField,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionNode,
  type SelectionSetNode,
  type ValueNode,
} from 'graphql';
import { fragmentsByName, type FragmentsByName } from '../graphql/document-fragments.ts';
import { mayRun } from '../graphql/skip-include.ts';
import { ACCOUNT_FIELDS_ANSWERED_BY_ID, DEFAULT_PAGE_SIZE, FULL_ONLY_ACCOUNT_FIELDS, MAX_PAGE_SIZE } from '../graphql/schema-shape.ts';

/**
 * The weights of the cost estimate (see docs/limits.md for the formula). They are not settings: the limit
 * `MAX_QUERY_COST` is the knob, the weights only say how fields compare.
 */
export const COST = {
  /** Any field answered from what the gateway already holds. */
  field: 1,
  /** A field that costs (at worst) one upstream request. */
  upstream: 10,
  /** Assumed length of a list with no `first` (an account's sources and connect tokens). */
  listSize: 10,
} as const;

/**
 * Fields whose resolver makes an upstream request (besides every mutation field). Kept by name because the
 * schema has no cost directive; test/resilience/cost-weights.test.ts selects every field of the schema
 * through the gateway and fails when one makes a request this list (or FULL_ACCOUNT_FIELDS) does not charge,
 * or is charged without making one.
 */
export const UPSTREAM_FIELDS: ReadonlySet<string> = new Set([
  'Query.account',
  'Query.accounts',
  'Query.connectToken',
  'Query.connectTokens',
  'Account.connectTokens',
  'Account.connectToken',
  'CreateConnectTokenPayload.connectToken',
]);

/**
 * Account fields a used connect token does not embed: selecting any of them under `ConnectToken.account`
 * loads the full account, one request for all of them (the loader shares it), so it is charged once.
 */
export const FULL_ACCOUNT_FIELDS: ReadonlySet<string> = new Set([...FULL_ONLY_ACCOUNT_FIELDS].map((name) => `Account.${name}`));
const TOKEN_ACCOUNT_FIELD = 'ConnectToken.account';

/**
 * Payload fields of the account a write just made or changed: known by its id, it is loaded (one request)
 * only when their selection needs more than the id (ACCOUNT_FIELDS_ANSWERED_BY_ID).
 */
export const WRITTEN_ACCOUNT_FIELDS: ReadonlySet<string> = new Set(['CreateAccountPayload.account', 'UpdateAccountPayload.account']);

/** What the operation limits are checked against. */
export interface OperationMeasure {
  /** Nesting of fields; `ofType` inside introspection does not count (it only unwraps list/non-null types). Infinity when too deep to measure. */
  depth: number;
  /** Aliased fields, each fragment counted every time it is spread (once into the selections merged at one place). */
  aliases: number;
  /** The longest alias's length: each one is repeated in the answer for every item of every list around it. */
  longestAlias: number;
  /** Distinct response keys of the operation's root selection set (0 when measuring stopped: cost is Infinity). */
  rootFields: number;
  /** `__schema` fields, by response key: each answers the whole schema, which the cost (0 for introspection) does not weigh. */
  schemaFields: number;
  /** Aliased fields inside introspection (of `__Schema`, `__Type`, …), counted as `aliases` are: each answers its part of the schema again. */
  introspectionAliases: number;
  /** The estimated cost, see COST; Infinity when measuring stopped at MAX_SELECTIONS_VISITED. */
  cost: number;
  /** Selections visited while measuring: past MAX_SELECTIONS_VISITED the operation is refused unmeasured. */
  selectionsVisited: number;
  /** Whether a `first` or a `@skip`/`@include` condition was read from a variable, so the measure holds only for these variable values. */
  usesVariables: boolean;
  /**
   * The cost of one item of each list field the estimate assumed COST.listSize long (no `first` bounds it),
   * by its node in the document: what each item past the assumed ones adds while the operation runs.
   */
  assumedListItemCosts: ReadonlyMap<FieldNode, number>;
}

/** The figures of a selection set, or of one field with its selections, that the operation's measure is summed from. */
interface SetMeasure {
  cost: number;
  depth: number;
  aliases: number;
  longestAlias: number;
  /** The set selects a field that a token's embedded account lacks. */
  needsFullAccount: boolean;
  /** The set selects an account field that its id alone does not answer. */
  needsAccountData: boolean;
  /** Distinct response keys of the set itself, through its fragments (0 for a field's own measure). */
  responseKeys: number;
  /** `__schema` fields, by response key, through its fragments (see OperationMeasure). */
  schemaFields: number;
  /** Aliased fields inside introspection, through its fragments (see OperationMeasure). */
  introspectionAliases: number;
}

const EMPTY: SetMeasure = { cost: 0, depth: 0, aliases: 0, longestAlias: 0, needsFullAccount: false, needsAccountData: false, responseKeys: 0, schemaFields: 0, introspectionAliases: 0 };

/** The field nodes that execution runs as one field (they share a response key), and the type they are selected on. */
interface MergedField {
  parent: GraphQLCompositeType;
  nodes: FieldNode[];
}

/**
 * Measures one operation of a validated document as graphql-js will run it: fields sharing a response key
 * (selected by overlapping fragments, say) are one field, counted once.
 */
export function measureOperation(
  schema: GraphQLSchema,
  document: DocumentNode,
  operation: OperationDefinitionNode,
  variables: Readonly<Record<string, unknown>> | undefined,
): OperationMeasure {
  return new OperationMeasurer(schema, document, operation, variables).measure();
}

/**
 * One operation's measuring. It walks down from the root a merged field at a time: #selectionSets merges
 * the sets that answer one object into fields as execution will (#mergeFields) and sums what #field
 * measures of each; #field measures a field's own selections through #selectionSets again. Where the
 * figures come from:
 * - cost: #field, the field's weight (fieldWeight) plus its selections' cost times the length of a list:
 *   the page its connection asked for (#pageSizeOf), else COST.listSize;
 * - depth, aliases, longestAlias, schemaFields, introspectionAliases: #field, from the nodes of each merged field;
 * - rootFields: the merged fields of the root's set;
 * - selectionsVisited: #collectFields, which stops the walk past MAX_SELECTIONS_VISITED;
 * - usesVariables: #pageSizeOf and #runs; assumedListItemCosts: #assumeListLength.
 * Selections `@skip`/`@include` leave out (#runs) are left out of every figure: execution never runs them.
 * The last three belong to the walk and are kept here. The others are summed set by set (addUp) and
 * memoized with the set, so that every place selecting what a measured set selects reuses its figures.
 */
class OperationMeasurer {
  readonly #schema: GraphQLSchema;
  readonly #operation: OperationDefinitionNode;
  readonly #variables: Readonly<Record<string, unknown>> | undefined;
  readonly #fragments: FragmentsByName;
  readonly #assumedListItemCosts = new Map<FieldNode, number>();
  #usesVariables = false;
  /** The variables as execution reads them, once a directive needs them; null when they do not fit their types. */
  #coercedVariables: Record<string, unknown> | null | undefined;
  #visited = 0;
  /** Measured sets, by #memoKey. */
  readonly #memo = new Map<string, SetMeasure>();
  readonly #contentKeys = new Map<SelectionSetNode, string>();
  /** A number for each field and inline fragment of the document, for the memo's keys. */
  readonly #nodeIds = new Map<FieldNode | InlineFragmentNode, number>();

  constructor(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    variables: Readonly<Record<string, unknown>> | undefined,
  ) {
    this.#schema = schema;
    this.#operation = operation;
    this.#variables = variables;
    this.#fragments = fragmentsByName(document);
  }

  measure(): OperationMeasure {
    const root = rootType(this.#schema, this.#operation);
    let measure: SetMeasure;
    try {
      measure = root ? this.#selectionSets(root, [this.#operation.selectionSet], undefined) : EMPTY;
    } catch (error) {
      if (error instanceof RangeError && /call stack/i.test(error.message)) {
        // Out of stack: the walk recurses a field at a time, and fragments spreading each other nest fields far
        // deeper than the text does (a few thousand levels parse and validate). Deeper than any MAX_QUERY_DEPTH.
        measure = { ...EMPTY, depth: Infinity, cost: Infinity };
      } else {
        if (!(error instanceof TooManyToMeasure)) throw error;
        // Refused (checkLimits): what such a document would make the gateway do is unknown.
        measure = { ...EMPTY, cost: Infinity };
      }
    }
    return {
      depth: measure.depth,
      aliases: measure.aliases,
      longestAlias: measure.longestAlias,
      rootFields: measure.responseKeys,
      schemaFields: measure.schemaFields,
      introspectionAliases: measure.introspectionAliases,
      cost: measure.cost,
      selectionsVisited: this.#visited,
      usesVariables: this.#usesVariables,
      assumedListItemCosts: this.#assumedListItemCosts,
    };
  }

  /**
   * What one object of the answer costs: the selection sets of every field node that execution merges into
   * the field answering it (`sets`), merged into fields as graphql-js merges them, each measured once.
   * `pageSize` is the `first` of the connection whose object this is: its lists (`nodes`, `edges`) are that
   * long. Memoized by what the sets select and the page size, so the work stays linear in the document even
   * when fragments spread each other many times over.
   */
  #selectionSets(type: GraphQLCompositeType, sets: readonly SelectionSetNode[], pageSize: number | undefined): SetMeasure {
    const key = this.#memoKey(type, sets, pageSize);
    const known = this.#memo.get(key);
    if (known) return known;
    // Validation refuses fragment cycles; this entry only keeps a cycle from recursing if one slipped through.
    this.#memo.set(key, EMPTY);
    const fields = this.#mergeFields(type, sets);
    const total: SetMeasure = { ...EMPTY, responseKeys: fields.size };
    for (const { parent, nodes } of fields.values()) addUp(total, this.#field(parent, nodes, pageSize));
    this.#memo.set(key, total);
    return total;
  }

  /**
   * The fields of `sets`, through their fragments, grouped by response key as graphql-js groups them to run
   * each group as one field. A fragment counts once however often it is spread into these sets
   * (`{ ...A ...A }` runs it once), and each time it is spread elsewhere.
   */
  #mergeFields(type: GraphQLCompositeType, sets: readonly SelectionSetNode[]): Map<string, MergedField> {
    const fields = new Map<string, MergedField>();
    const spread = new Set<string>();
    for (const set of sets) this.#collectFields(fields, spread, type, set);
    return fields;
  }

  #collectFields(fields: Map<string, MergedField>, spread: Set<string>, parent: GraphQLCompositeType, set: SelectionSetNode): void {
    this.#visited += set.selections.length;
    if (this.#visited > MAX_SELECTIONS_VISITED) throw new TooManyToMeasure();
    for (const selection of set.selections) {
      if (selection.directives?.length && !this.#runs(selection)) continue;
      switch (selection.kind) {
        case Kind.FIELD: {
          const responseKey = (selection.alias ?? selection.name).value;
          const field = fields.get(responseKey);
          if (field) field.nodes.push(selection);
          else fields.set(responseKey, { parent, nodes: [selection] });
          break;
        }
        case Kind.INLINE_FRAGMENT: {
          const type = selection.typeCondition ? this.#schema.getType(selection.typeCondition.name.value) : parent;
          if (isCompositeType(type)) this.#collectFields(fields, spread, type, selection.selectionSet);
          break;
        }
        case Kind.FRAGMENT_SPREAD: {
          if (spread.has(selection.name.value)) break;
          spread.add(selection.name.value);
          const definition = this.#fragments[selection.name.value];
          const type = definition && this.#schema.getType(definition.typeCondition.name.value);
          if (definition && isCompositeType(type)) this.#collectFields(fields, spread, type, definition.selectionSet);
          break;
        }
      }
    }
  }

  /**
   * Whether execution runs `selection`, as its `@skip`/`@include` decide. Read from a variable, the answer
   * holds for this request's values only (coerced as execution coerces them, defaults included: once per
   * operation, and only when a directive reads one); where they cannot be read, execution refuses the
   * operation, and the selection is counted.
   */
  #runs(selection: SelectionNode): boolean {
    if (!selection.directives!.some(readsVariable)) return mayRun(selection, NO_VARIABLES);
    this.#usesVariables = true;
    this.#coercedVariables ??= getVariableValues(this.#schema, this.#operation.variableDefinitions ?? [], this.#variables ?? {}).coerced ?? null;
    return this.#coercedVariables === null || mayRun(selection, this.#coercedVariables);
  }

  /**
   * One field of the answer: `nodes`, the field nodes sharing its response key (same field, same arguments),
   * selected on `parent`; `pageSize` as for #selectionSets.
   */
  #field(parent: GraphQLCompositeType, nodes: readonly FieldNode[], pageSize: number | undefined): SetMeasure {
    const node = nodes[0]!;
    const name = node.name.value;
    const key = `${parent.name}.${name}`;
    const definition = fieldDefinition(this.#schema, parent, name);
    // Introspection is answered from the in-memory schema: no upstream cost, but depth and aliases count.
    const introspection = name.startsWith('__') || parent.name.startsWith('__');
    // An aliased `__typename` is one more answer per item for free: 99 of them under a page of 100 accounts'
    // sources (cost 1,111) answered 99,000 fields, ~60 ms of CPU and 1.5 MB for a 1.6 KB body, where ten plain
    // fields there are refused (10,111). Weighed as any field; the one under its own name (what clients add
    // to every selection, merged into one) still weighs nothing.
    const weight = introspection ? (name === '__typename' && node.alias && node.alias.value !== name ? COST.field : 0) : fieldWeight(this.#schema, parent, key);
    // Every node that carries an alias counts, merged or not: MAX_ALIASES bounds what the document asks.
    const aliases = aliasCount(nodes);
    const longestAlias = longestAliasOf(nodes);
    const needsFullAccount = FULL_ACCOUNT_FIELDS.has(key);
    const needsAccountData = parent.name === 'Account' && !introspection && !ACCOUNT_FIELDS_ANSWERED_BY_ID.has(name);
    const schemaFields = definition === SchemaMetaFieldDef ? 1 : 0;
    // Inside `__schema` or `__type` (of their types, not the root's fields themselves: `__type` aliases ask for other types).
    const introspectionAliases = parent.name.startsWith('__') ? aliases : 0;
    const type = definition && getNamedType(definition.type);
    const sets = selectionSetsOf(nodes);
    if (!definition || sets.length === 0 || !isCompositeType(type)) {
      return { cost: weight, depth: 1, aliases, longestAlias, needsFullAccount, needsAccountData, responseKeys: 0, schemaFields, introspectionAliases };
    }

    const first = definition.args.find(isFirstArgument);
    const child = this.#selectionSets(type, sets, first ? this.#pageSizeOf(node, first.defaultValue) : undefined);
    const isList = isListType(getNullableType(definition.type));
    if (isList && pageSize === undefined && !introspection) this.#assumeListLength(nodes, child.cost);
    const multiplier = isList ? (pageSize ?? COST.listSize) : 1;
    // One request loads the full account, however many of its fields need it.
    const accountLoad =
      (key === TOKEN_ACCOUNT_FIELD && child.needsFullAccount) || (WRITTEN_ACCOUNT_FIELDS.has(key) && child.needsAccountData) ? COST.upstream : 0;
    // A page of no items (`first: 0`, refused as it runs) runs nothing beneath: 0, where 0 × a cost that overflowed
    // to Infinity would be NaN, which no limit exceeds, and the operation's other fields would go uncounted.
    const itemsCost = multiplier === 0 ? 0 : multiplier * child.cost;
    return {
      cost: introspection ? 0 : weight + accountLoad + itemsCost,
      // `ofType` only unwraps list and non-null types, nested seven deep by GraphiQL's introspection query.
      depth: (key === '__Type.ofType' ? 0 : 1) + child.depth,
      aliases: aliases + child.aliases,
      longestAlias: Math.max(longestAlias, child.longestAlias),
      needsFullAccount,
      needsAccountData,
      responseKeys: 0,
      schemaFields: schemaFields + child.schemaFields,
      introspectionAliases: introspectionAliases + child.introspectionAliases,
    };
  }

  /**
   * Keeps what each item of a list adds past the COST.listSize items its cost assumed, for ListLengthBudget
   * to charge while the operation runs. An item costs at least a field: `{ __typename }` weighs nothing, yet
   * each item is answered. The list's nodes run as one field, which ListLengthBudget charges the most any of
   * them carries: each carries the merged item's cost (a node merged elsewhere too, the most it was given),
   * so that a node @skip leaves out of the field at run time takes nothing with it.
   */
  #assumeListLength(nodes: readonly FieldNode[], selectionsCost: number): void {
    const itemCost = Math.max(selectionsCost, COST.field);
    for (const each of nodes) this.#assumedListItemCosts.set(each, Math.max(this.#assumedListItemCosts.get(each) ?? 0, itemCost));
  }

  /**
   * The page size a connection field asks for, as its resolver will see it (null and omitted: the default).
   * Counted at most at the largest page: a larger `first` is refused by its resolver, before any upstream
   * call, as BAD_USER_INPUT, the code the contract gives it, rather than here as too complex.
   */
  #pageSizeOf(node: FieldNode, schemaDefault: unknown): number {
    const fallback = typeof schemaDefault === 'number' ? schemaDefault : DEFAULT_PAGE_SIZE;
    let value = node.arguments?.find(isFirstArgumentNode)?.value;
    if (value?.kind === Kind.VARIABLE) {
      this.#usesVariables = true;
      // Its own properties only, as graphql-js reads them: `$constructor` left out of the variables takes its
      // default (`first: 100`), where the object's inherited `constructor` would be read as a wrong type (20).
      const given = this.#variables !== undefined && Object.hasOwn(this.#variables, value.name.value) ? this.#variables[value.name.value] : undefined;
      if (typeof given === 'number') return pageSizeWithin(given);
      // A value of the wrong type fails coercion before any resolver runs; assume the default meanwhile.
      if (given !== undefined) return fallback;
      value = this.#variableDefault(value.name.value);
    }
    return value?.kind === Kind.INT ? pageSizeWithin(Number(value.value)) : fallback;
  }

  #variableDefault(name: string): ValueNode | undefined {
    for (const definition of this.#operation.variableDefinitions ?? []) {
      if (definition.variable.name.value === name) return definition.defaultValue;
    }
    return undefined;
  }

  #memoKey(type: GraphQLCompositeType, sets: readonly SelectionSetNode[], pageSize: number | undefined): string {
    return `${type.name}\0${pageSize ?? ''}\0${sets.map(this.#contentKey).join('|')}`;
  }

  // #contentKey and #selectionKey are arrow functions, made once per operation, so that `map` takes them as
  // they are rather than a closure made for each set.

  /**
   * A selection set by what it selects: its fields and inline fragments by node, its fragment spreads by name.
   * Sets that only spread the same fragments (`{ ...Card }` under each of 100 aliases) measure the same.
   */
  readonly #contentKey = (set: SelectionSetNode): string => {
    let key = this.#contentKeys.get(set);
    if (key === undefined) {
      key = set.selections.map(this.#selectionKey).join(' ');
      this.#contentKeys.set(set, key);
    }
    return key;
  };

  readonly #selectionKey = (selection: SelectionNode): string =>
    selection.kind === Kind.FRAGMENT_SPREAD ? `.${selection.name.value}` : String(this.#nodeId(selection));

  #nodeId(node: FieldNode | InlineFragmentNode): number {
    let id = this.#nodeIds.get(node);
    if (id === undefined) this.#nodeIds.set(node, (id = this.#nodeIds.size));
    return id;
  }
}

/** A set's figures from its fields': answered side by side, they add up, but for the deepest and the longest. */
function addUp(total: SetMeasure, part: SetMeasure): void {
  total.cost += part.cost;
  total.depth = Math.max(total.depth, part.depth);
  total.aliases += part.aliases;
  total.longestAlias = Math.max(total.longestAlias, part.longestAlias);
  total.needsFullAccount ||= part.needsFullAccount;
  total.needsAccountData ||= part.needsAccountData;
  total.schemaFields += part.schemaFields;
  total.introspectionAliases += part.introspectionAliases;
}

/** What a field itself costs, before its selections (COST). */
function fieldWeight(schema: GraphQLSchema, parent: GraphQLCompositeType, key: string): number {
  return UPSTREAM_FIELDS.has(key) || parent === schema.getMutationType() ? COST.upstream : COST.field;
}

function aliasCount(nodes: readonly FieldNode[]): number {
  let count = 0;
  for (const node of nodes) if (node.alias) count += 1;
  return count;
}

function longestAliasOf(nodes: readonly FieldNode[]): number {
  let longest = 0;
  for (const node of nodes) if (node.alias) longest = Math.max(longest, node.alias.value.length);
  return longest;
}

/** The nodes' selection sets, which execution runs together as the merged field's. */
function selectionSetsOf(nodes: readonly FieldNode[]): SelectionSetNode[] {
  const sets: SelectionSetNode[] = [];
  for (const node of nodes) if (node.selectionSet) sets.push(node.selectionSet);
  return sets;
}

const NO_VARIABLES: Readonly<Record<string, unknown>> = Object.freeze({});

/** Whether a `@skip`/`@include` of the selection takes its condition from a variable. */
function readsVariable(directive: DirectiveNode): boolean {
  return directive.arguments?.some((argument) => argument.value.kind === Kind.VARIABLE) ?? false;
}

function isFirstArgument(argument: GraphQLArgument): boolean {
  return argument.name === 'first';
}

function isFirstArgumentNode(argument: ArgumentNode): boolean {
  return argument.name.value === 'first';
}

/**
 * The most selections measuring one operation visits (not a setting). Fields merged across fragments make
 * sets of selections the memo cannot share, and a document can double them at each level: a 2,900-token one
 * took a second. Legitimate documents are far below: GraphiQL's introspection query visits ~75, a page of 100
 * accounts with their lists 20–40, 100 aliases spreading a fragment of 21 fragments ~150.
 */
export const MAX_SELECTIONS_VISITED = 20_000;

class TooManyToMeasure extends Error {}

function rootType(schema: GraphQLSchema, operation: OperationDefinitionNode): GraphQLCompositeType | undefined {
  const type = schema.getRootType(operation.operation);
  return type ?? undefined;
}

/** A field of a type, the introspection meta-fields included (they are not in `getFields()`). */
function fieldDefinition(schema: GraphQLSchema, parent: GraphQLCompositeType, name: string): GraphQLField<unknown, unknown> | undefined {
  if (name === TypeNameMetaFieldDef.name) return TypeNameMetaFieldDef;
  if (parent === schema.getQueryType()) {
    if (name === SchemaMetaFieldDef.name) return SchemaMetaFieldDef;
    if (name === TypeMetaFieldDef.name) return TypeMetaFieldDef;
  }
  return 'getFields' in parent ? parent.getFields()[name] : undefined;
}

function pageSizeWithin(first: number): number {
  return Math.min(MAX_PAGE_SIZE, Math.max(0, first));
}
