import type { TypedDocumentString } from './gql/graphql';

/**
 * A minimal typed GraphQL client over fetch: the document carries its result and variable types (generated
 * by client-preset), so a query's fields and variables are checked by TypeScript. urql or Apollo Client
 * accept the same generated documents (see docs/frontend.md).
 */

/** The gateway's endpoint, written into the page by serve.ts (a deployed app would use its own config). */
const endpoint = document.querySelector<HTMLMetaElement>('meta[name="graphql-endpoint"]')?.content ?? '/graphql';

/**
 * An entry of the answer's `errors`: what a page branches on is its `extensions.code`, never its message; a
 * BAD_USER_INPUT names the input it refuses in `extensions.field` (`input.email`).
 */
export interface GraphQLErrorEntry {
  message: string;
  path?: ReadonlyArray<string | number>;
  extensions?: { code?: string; field?: string };
}

export class GraphQLRequestError extends Error {
  constructor(
    message: string,
    readonly errors: readonly GraphQLErrorEntry[],
  ) {
    super(message);
  }

  /**
   * Whether the field at `path` itself failed with `code`: a field below it failing with the same code is
   * another thing (connectToken's NOT_FOUND is no such token; connectToken.account's, no such account).
   */
  failedWith(code: string, path: ReadonlyArray<string | number>): boolean {
    return this.errors.some((error) => error.extensions?.code === code && error.path?.length === path.length && startsWith(error.path, path));
  }

  /** Whether the field at `path`, or one below it, failed with `code`. */
  failedWithin(code: string, path: ReadonlyArray<string | number>): boolean {
    return this.errors.some((error) => error.extensions?.code === code && error.path !== undefined && startsWith(error.path, path));
  }

  /** Whether the gateway refused the input field `field` (`input.email`) as the operation spells it. */
  refused(field: string): boolean {
    return this.errors.some((error) => error.extensions?.code === 'BAD_USER_INPUT' && error.extensions.field === field);
  }
}

function startsWith(path: ReadonlyArray<string | number>, prefix: ReadonlyArray<string | number>): boolean {
  return prefix.length <= path.length && prefix.every((key, i) => key === path[i]);
}

export async function execute<TResult, TVariables>(
  document: TypedDocumentString<TResult, TVariables>,
  ...[variables]: TVariables extends Record<string, never> ? [] : [TVariables]
): Promise<TResult> {
  let response: Response;
  try {
    response = await fetch(endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json' },
      // With auth on, add `authorization: Bearer <token>` here; the gateway does not use cookies.
      body: JSON.stringify({ query: document.toString(), variables }),
    });
  } catch {
    // The browser tells the page no more than "Failed to fetch": no answer and an answer CORS keeps from this
    // origin look the same to it (the console says which).
    throw new GraphQLRequestError(
      `The gateway at ${endpoint} could not be reached: it is not running, or its CORS_ORIGINS does not list this page's origin, ${location.origin}`,
      [],
    );
  }
  const noResponse = () => new GraphQLRequestError(`The gateway answered HTTP ${response.status} without a GraphQL response`, []);
  let body: { data?: TResult | null; errors?: GraphQLErrorEntry[] };
  try {
    body = (await response.json()) as typeof body;
  } catch {
    throw noResponse();
  }
  // JSON, but no response object (`null`, a list): what a proxy in front may answer, never the gateway.
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw noResponse();
  if (body.errors?.length || body.data == null) {
    const errors = body.errors ?? [];
    throw new GraphQLRequestError(errors.map((e) => e.message).join('; ') || `The gateway answered HTTP ${response.status} with neither data nor an error`, errors);
  }
  return body.data;
}
