import {
  getNamedType,
  getNullableType,
  isCompositeType,
  isListType,
  Kind,
  SchemaMetaFieldDef,
  TypeMetaFieldDef,
  TypeNameMetaFieldDef,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type InlineFragmentNode,
  type GraphQLCompositeType,
  type GraphQLField,
  type GraphQLNamedType,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type ValueNode,
} from 'graphql';
import { DEFAULT_PAGE_SIZE, FULL_ONLY_ACCOUNT_FIELDS, MAX_PAGE_SIZE } from '../schema-shape.ts';

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
  'CreateAccountPayload.account',
  'UpdateAccountPayload.account',
]);

/**
 * Account fields a used connect token does not embed: selecting any of them under `ConnectToken.account`
 * loads the full account, one request for all of them (the loader shares it), so it is charged once.
 */
export const FULL_ACCOUNT_FIELDS: ReadonlySet<string> = new Set([...FULL_ONLY_ACCOUNT_FIELDS].map((name) => `Account.${name}`));
const TOKEN_ACCOUNT_FIELD = 'ConnectToken.account';

/** What the operation limits are checked against. */
export interface OperationMeasure {
  /** Nesting of fields; `ofType` inside introspection does not count (it only unwraps list/non-null types). */
  depth: number;
  /** Aliased fields, each fragment counted every time it is spread (once into the selections merged at one place). */
  aliases: number;
  /** The longest alias's length: each one is repeated in the answer for every item of every list around it. */
  longestAlias: number;
  /** Distinct response keys of the operation's root selection set (0 when measuring stopped: cost is Infinity). */
  rootFields: number;
  /** `__schema` fields, by response key: each answers the whole schema, which the cost (0 for introspection) does not weigh. */
  schemaFields: number;
  /** The estimated cost, see COST; Infinity when measuring stopped at MAX_SELECTIONS_VISITED. */
  cost: number;
  /** Selections visited while measuring: past MAX_SELECTIONS_VISITED the operation is refused unmeasured. */
  selectionsVisited: number;
  /** Whether a `first` was read from a variable, so the measure holds only for these variable values. */
  usesVariables: boolean;
  /**
   * The cost of one item of each list field the estimate assumed COST.listSize long (no `first` bounds it),
   * by its node in the document: what each item past the assumed ones adds while the operation runs.
   */
  assumedListItemCosts: ReadonlyMap<FieldNode, number>;
}

interface SetMeasure {
  cost: number;
  depth: number;
  aliases: number;
  longestAlias: number;
  /** The set selects a field that a token's embedded account lacks. */
  needsFullAccount: boolean;
  /** Distinct response keys of the set itself, through its fragments (0 for a field's own measure). */
  responseKeys: number;
  /** `__schema` fields, by response key, through its fragments (see OperationMeasure). */
  schemaFields: number;
}

const EMPTY: SetMeasure = { cost: 0, depth: 0, aliases: 0, longestAlias: 0, needsFullAccount: false, responseKeys: 0, schemaFields: 0 };

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
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  }
  const assumedListItemCosts = new Map<FieldNode, number>();
  let usesVariables = false;

  const variableDefault = (name: string): ValueNode | undefined =>
    operation.variableDefinitions?.find((d) => d.variable.name.value === name)?.defaultValue;

  /**
   * The page size a connection field asks for, as its resolver will see it (null and omitted: the default).
   * Counted at most at the largest page: a larger `first` is refused by its resolver, before any upstream
   * call, as BAD_USER_INPUT, the code the contract gives it, rather than here as too complex.
   */
  const pageSizeOf = (node: FieldNode, schemaDefault: unknown): number => {
    const fallback = typeof schemaDefault === 'number' ? schemaDefault : DEFAULT_PAGE_SIZE;
    let value = node.arguments?.find((a) => a.name.value === 'first')?.value;
    if (value?.kind === Kind.VARIABLE) {
      usesVariables = true;
      const given = variables?.[value.name.value];
      if (typeof given === 'number') return pageSizeWithin(given);
      // A value of the wrong type fails coercion before any resolver runs; assume the default meanwhile.
      if (given !== undefined) return fallback;
      value = variableDefault(value.name.value);
    }
    return value?.kind === Kind.INT ? pageSizeWithin(Number(value.value)) : fallback;
  };

  /** A number for each field and inline fragment of the document, for the memo's keys. */
  const nodeIds = new Map<FieldNode | InlineFragmentNode, number>();
  const nodeId = (node: FieldNode | InlineFragmentNode): number => {
    let id = nodeIds.get(node);
    if (id === undefined) nodeIds.set(node, (id = nodeIds.size));
    return id;
  };
  /**
   * A selection set by what it selects: its fields and inline fragments by node, its fragment spreads by name.
   * Sets that only spread the same fragments (`{ ...Card }` under each of 100 aliases) measure the same.
   */
  const contentKeys = new Map<SelectionSetNode, string>();
  const contentKey = (set: SelectionSetNode): string => {
    let key = contentKeys.get(set);
    if (key === undefined) {
      key = set.selections.map((selection) => (selection.kind === Kind.FRAGMENT_SPREAD ? `.${selection.name.value}` : String(nodeId(selection)))).join(' ');
      contentKeys.set(set, key);
    }
    return key;
  };
  const memo = new Map<string, SetMeasure>();

  /**
   * What one object of the answer costs: the selection sets of every field node that execution merges into
   * the field answering it (`sets`: fields sharing a response key run once, their selections together), their
   * fields grouped by response key as graphql-js groups them, each group measured once. A fragment counts
   * once however often it is spread into these sets (`{ ...A ...A }` runs it once), and each time it is spread
   * elsewhere. Memoized by what the sets select and the page size, so the work stays linear in the document
   * even when fragments spread each other many times over.
   */
  const selectionSets = (type: GraphQLCompositeType, sets: readonly SelectionSetNode[], pageSize: number | undefined): SetMeasure => {
    const key = `${type.name}\0${pageSize ?? ''}\0${sets.map(contentKey).join('|')}`;
    const known = memo.get(key);
    if (known) return known;
    // Validation refuses fragment cycles; this entry only keeps a cycle from recursing if one slipped through.
    memo.set(key, EMPTY);
    const groups = new Map<string, { parent: GraphQLCompositeType; nodes: FieldNode[] }>();
    const spread = new Set<string>();
    const collect = (parent: GraphQLCompositeType, set: SelectionSetNode): void => {
      visited += set.selections.length;
      if (visited > MAX_SELECTIONS_VISITED) throw new TooManyToMeasure();
      for (const selection of set.selections) {
        if (selection.kind === Kind.FIELD) {
          const responseKey = (selection.alias ?? selection.name).value;
          const group = groups.get(responseKey);
          if (group) group.nodes.push(selection);
          else groups.set(responseKey, { parent, nodes: [selection] });
          continue;
        }
        let narrowed: GraphQLNamedType | undefined | null = parent;
        let inner: SelectionSetNode | undefined;
        if (selection.kind === Kind.INLINE_FRAGMENT) {
          if (selection.typeCondition) narrowed = schema.getType(selection.typeCondition.name.value);
          inner = selection.selectionSet;
        } else if (!spread.has(selection.name.value)) {
          spread.add(selection.name.value);
          const definition = fragments.get(selection.name.value);
          narrowed = definition && schema.getType(definition.typeCondition.name.value);
          inner = definition?.selectionSet;
        }
        if (inner && isCompositeType(narrowed)) collect(narrowed, inner);
      }
    };
    for (const set of sets) collect(type, set);
    const total = { ...EMPTY, responseKeys: groups.size };
    for (const { parent, nodes } of groups.values()) {
      const part = field(parent, nodes, pageSize);
      total.cost += part.cost;
      total.depth = Math.max(total.depth, part.depth);
      total.aliases += part.aliases;
      total.longestAlias = Math.max(total.longestAlias, part.longestAlias);
      total.needsFullAccount ||= part.needsFullAccount;
      total.schemaFields += part.schemaFields;
    }
    memo.set(key, total);
    return total;
  };

  /** One field of the answer: `nodes`, the field nodes sharing its response key (same field, same arguments). */
  const field = (parent: GraphQLCompositeType, nodes: readonly FieldNode[], pageSize: number | undefined): SetMeasure => {
    const node = nodes[0]!;
    const name = node.name.value;
    const key = `${parent.name}.${name}`;
    let aliases = 0;
    let longestAlias = 0;
    for (const each of nodes) {
      if (!each.alias) continue;
      aliases += 1;
      longestAlias = Math.max(longestAlias, each.alias.value.length);
    }
    const definition = fieldDefinition(schema, parent, name);
    // Introspection is answered from the in-memory schema: no upstream cost, but depth and aliases count.
    const introspection = name.startsWith('__') || parent.name.startsWith('__');
    const weight = introspection ? 0 : UPSTREAM_FIELDS.has(key) || parent === schema.getMutationType() ? COST.upstream : COST.field;
    const needsFullAccount = FULL_ACCOUNT_FIELDS.has(key);
    const type = definition && getNamedType(definition.type);
    const sets = nodes.flatMap((each) => (each.selectionSet ? [each.selectionSet] : []));
    const schemaFields = definition === SchemaMetaFieldDef ? 1 : 0;
    if (!definition || sets.length === 0 || !isCompositeType(type)) return { cost: weight, depth: 1, aliases, longestAlias, needsFullAccount, responseKeys: 0, schemaFields };

    const first = definition.args.find((a) => a.name === 'first');
    const child = selectionSets(type, sets, first ? pageSizeOf(node, first.defaultValue) : undefined);
    const isList = isListType(getNullableType(definition.type));
    if (isList && pageSize === undefined && !introspection) {
      // An item costs at least a field: `{ __typename }` weighs nothing, yet each item is answered. The list's
      // nodes run as one field, which ListLengthBudget charges the most any of them carries: each carries the
      // merged item's cost (a node merged elsewhere too, the most it was given), so that a node @skip leaves
      // out of the field at run time takes nothing with it.
      const itemCost = Math.max(child.cost, COST.field);
      for (const each of nodes) assumedListItemCosts.set(each, Math.max(assumedListItemCosts.get(each) ?? 0, itemCost));
    }
    const multiplier = isList ? (pageSize ?? COST.listSize) : 1;
    const accountLoad = key === TOKEN_ACCOUNT_FIELD && child.needsFullAccount ? COST.upstream : 0;
    return {
      cost: introspection ? 0 : weight + accountLoad + multiplier * child.cost,
      depth: (key === '__Type.ofType' ? 0 : 1) + child.depth,
      aliases: aliases + child.aliases,
      longestAlias: Math.max(longestAlias, child.longestAlias),
      needsFullAccount,
      responseKeys: 0,
      schemaFields: schemaFields + child.schemaFields,
    };
  };

  const root = rootType(schema, operation);
  let visited = 0;
  let measure: SetMeasure;
  try {
    measure = root ? selectionSets(root, [operation.selectionSet], undefined) : EMPTY;
  } catch (error) {
    if (!(error instanceof TooManyToMeasure)) throw error;
    // Refused (checkLimits): what such a document would make the gateway do is unknown.
    measure = { ...EMPTY, cost: Infinity };
  }
  return {
    depth: measure.depth,
    aliases: measure.aliases,
    longestAlias: measure.longestAlias,
    rootFields: measure.responseKeys,
    schemaFields: measure.schemaFields,
    cost: measure.cost,
    selectionsVisited: visited,
    usesVariables,
    assumedListItemCosts,
  };
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
