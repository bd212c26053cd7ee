/**
 * What the server writes into the IDE's page (index.ts) and its script reads back (browser/main.tsx): where to
 * send operations and what to show first. One declaration for both sides, so that a field renamed on one
 * fails the typecheck of the other instead of reading as `undefined` in the browser. Types only: the browser
 * code, checked without Node's types, imports it too.
 */
export interface IdeConfig {
  endpoint: string;
  /** Monaco worker script URLs by language label (`editor` for everything else); content-hashed names. */
  workers: { editor: string; json: string; graphql: string };
  defaultQuery: string;
  defaultHeaders: string;
  /** Whether the gateway answers introspection: when not, no schema is asked for. */
  introspection: boolean;
  /** Whether every request needs a token: the schema is then asked for once one has been taken. */
  tokenRequired: boolean;
}
