/**
 * The gateway's GraphQL IDE: GraphiQL from the `graphiql` package, bundled by scripts/build-ide.mjs and served
 * by the gateway under /graphql/ide/, so it works offline and behind firewalls (the page's CSP allows no other
 * origin at all).
 */
import { GraphiQL } from 'graphiql';
import { useGraphiQL, useGraphiQLActions } from '@graphiql/react';
import type { Fetcher, FetcherOpts, FetcherParams, Observable, Storage, SyncExecutionResult } from '@graphiql/toolkit';
import { useCallback, useEffect, useRef, useState } from 'react';
import { createRoot } from 'react-dom/client';
import 'graphiql/style.css';
import './ide.css';
import { cutEnd } from '../../support/shortened.ts';
import type { IdeConfig } from '../config.ts';

const config = JSON.parse(document.getElementById('ide-config')?.textContent ?? '{}') as IdeConfig;

// Monaco runs its language services in web workers. Bundlers usually wire them up through plugins; here the
// build emits each worker as its own script next to the app, and Monaco is told where they are. Classic
// (non-module) workers, because the worker bundles are IIFEs and every browser supports those.
(globalThis as unknown as { MonacoEnvironment: unknown }).MonacoEnvironment = {
  getWorker(_workerId: string, label: string): Worker {
    const url = label === 'json' || label === 'graphql' ? config.workers[label] : config.workers.editor;
    const worker = new Worker(url, { name: label });
    // An error thrown by the worker's own code comes as an ErrorEvent; a script that could not be had, as a bare Event.
    worker.addEventListener('error', (event) => {
      if (!(event instanceof ErrorEvent)) sayWorkerNotLoaded(url);
    });
    return worker;
  },
};

/**
 * Said once, over the IDE, when a language worker's script does not load. Its name is the build's the page came
 * from, and the gateway serves only its current build's files: the editors stop a worker after two idle minutes
 * and start it again when next needed, so a page left open while the gateway was rebuilt or redeployed lost its
 * checks and completion without a word (its console holding an `Event`), operations still running.
 */
let workerNotLoadedSaid = false;
function sayWorkerNotLoaded(url: string): void {
  if (workerNotLoadedSaid) return;
  workerNotLoadedSaid = true;
  const notice = document.createElement('div');
  notice.className = 'ide-notice';
  notice.setAttribute('role', 'alert');
  notice.textContent = `The editors' checks and completion stopped: the file they run in (${url}) could not be loaded from the gateway, most likely rebuilt or redeployed since this page was opened. Reload the page to get them back; operations still run. `;
  const reload = document.createElement('button');
  reload.type = 'button';
  reload.textContent = 'Reload';
  reload.addEventListener('click', () => location.reload());
  // Fixed at the window's foot, it covers the sidebar's last buttons, and in a short window (a zoomed one) the
  // Variables and Headers editors: whoever works on without the checks puts it away. The focus, on this button,
  // would go nowhere with it: it goes to the run button, operations still running.
  const dismiss = document.createElement('button');
  dismiss.type = 'button';
  dismiss.textContent = 'Dismiss';
  dismiss.addEventListener('click', () => {
    notice.remove();
    document.querySelector<HTMLElement>('.graphiql-execute-button')?.focus();
  });
  notice.append(reload, dismiss);
  document.body.append(notice);
}

/**
 * The name GraphiQL gives its schema request, by which the fetcher tells it from a person's operations. Not its
 * default, `IntrospectionQuery`: that is also the name of graphql-js's introspection query, which people paste
 * in and run, and whose answer would then have been taken for the schema request's.
 */
const INTROSPECTION_QUERY_NAME = 'IdeSchema';
/** Whether the last schema request was refused for want of a token (401), not for another reason. */
let schemaNeedsToken = false;
/**
 * Whether the last schema request got no answer from the gateway that says anything of the schema (see
 * `showsTokenTaken`): none at all, a proxy's page, a 503. Unlike a 401 or a refusal that would stand, it is asked
 * for again after the next operation the gateway took, whatever its headers.
 */
let schemaUnanswered = false;
/** The headers the last schema request and the last operation were sent with: the schema is asked for again only with new ones. */
let schemaHeaders = '';
let operationHeaders = '';
/** Whether the last operation a person ran (not the schema request) got an answer that shows the gateway took its token. */
let operationTookToken = false;

/** What GraphiQL takes as one request's answer: the gateway's, or one the page makes up (`failure`). */
type Answer = Exclude<SyncExecutionResult, Observable<unknown> | AsyncIterable<unknown>>;

/**
 * Each request handed to GraphiQL as an observable, not a promise: GraphiQL stops only an operation it holds a
 * subscription to. With a promise, its stop button turned back into the run button while the request went on and
 * its answer filled the result pane later, and Ctrl-Enter, which the button offers as the way to stop, sent the
 * operation a second time (a mutation: two writes). Unsubscribed, the request is aborted (the gateway sees its
 * client gone and cancels the operation's upstream calls) and its answer, should one come, is not shown.
 */
const fetcher: Fetcher = (given, options): Observable<Answer> => ({
  subscribe(first?: Partial<Observer> | Observer['next'], error?: Observer['error'] | null, complete?: Observer['complete']) {
    const observer: Partial<Observer> = typeof first === 'object' ? first : { next: first, error: error ?? undefined, complete };
    const abort = new AbortController();
    send(given, options, abort.signal).then(
      (answer) => {
        if (abort.signal.aborted) return;
        observer.next?.(answer);
        observer.complete?.();
      },
      (reason: unknown) => {
        if (!abort.signal.aborted) observer.error?.(reason);
      },
    );
    return { unsubscribe: () => abort.abort() };
  },
});

interface Observer {
  next: (answer: Answer) => void;
  error: (error: unknown) => void;
  complete: () => void;
}

/**
 * Plain fetch rather than @graphiql/toolkit's fetcher: the gateway has no subscriptions or incremental
 * delivery, and the headers typed in the headers editor (e.g. `Authorization: Bearer …`) are sent as they are.
 */
async function send(given: FetcherParams, options: FetcherOpts | undefined, signal: AbortSignal): Promise<Answer> {
  // GraphiQL names its first schema request as told, but not the one it sends when that gets no data (without
  // subscriptionType, for older servers): graphql-js's document, named IntrospectionQuery, under the name told,
  // which the gateway answers "Unknown operation named IdeSchema". Named here as the first was.
  const schemaRequest = given.operationName === INTROSPECTION_QUERY_NAME;
  const params = schemaRequest ? { ...given, query: given.query.replace(/^(\s*query\s+)IntrospectionQuery\b/, `$1${INTROSPECTION_QUERY_NAME}`) } : given;
  // Taken as unanswered until an answer says otherwise: a request not sent, or that got no answer, says nothing.
  const headers = JSON.stringify(options?.headers ?? {});
  if (schemaRequest) {
    schemaHeaders = headers;
    schemaNeedsToken = false;
    schemaUnanswered = true;
  } else {
    operationHeaders = headers;
    operationTookToken = false;
  }
  // The headers are checked before anything is sent: a name or value fetch refuses (a token pasted with a
  // typographic quote or ellipsis in it, a space in a name) would make fetch throw, and GraphiQL would show its
  // TypeError with the bundle's stack. The page's own Content-Type and Accept are set on what was typed, not
  // added beside it: a `"Content-Type": "application/json"` copied from a curl command, added to the page's
  // `content-type` (names differing in case only are two keys of one object), was sent as
  // `application/json, application/json`, and the gateway refused it (415). The body is always JSON; an
  // Accept typed in is the person's to choose.
  let requestHeaders: Headers;
  try {
    requestHeaders = new Headers(options?.headers);
  } catch (error) {
    return failure(`Request not sent: a header in the Headers editor is not one HTTP allows (${messageOf(error)}).`);
  }
  requestHeaders.set('content-type', 'application/json');
  if (!requestHeaders.has('accept')) requestHeaders.set('accept', 'application/graphql-response+json, application/json');
  let response: Response;
  let text: string;
  try {
    response = await fetch(config.endpoint, { method: 'POST', headers: requestHeaders, body: JSON.stringify(params), credentials: 'same-origin', signal });
    text = await response.text();
  } catch (error) {
    // The gateway stopped, or the network is down: fetch's bare "Failed to fetch", with the minified bundle's
    // stack trace, would otherwise be all the result pane shows.
    const endpoint = new URL(config.endpoint, document.baseURI).href;
    return failure(`No answer from the gateway at ${endpoint} (${messageOf(error)}): is it running and reachable? Run the operation again once it is.`);
  }
  let answer: unknown;
  try {
    answer = JSON.parse(text);
  } catch {
    answer = undefined;
  }
  const tokenTaken = showsTokenTaken(response.status, answer);
  if (schemaRequest) {
    schemaNeedsToken = response.status === 401;
    schemaUnanswered = !tokenTaken && !schemaNeedsToken;
  } else {
    operationTookToken = tokenTaken;
  }
  // A proxy's HTML error page, an empty body, or JSON that is no GraphQL answer (a proxy's own error object, whose
  // status the result pane would not show; `null`, on which GraphiQL threw and showed its TypeError with the
  // bundle's stack): what came back, with its status, instead of a bare JSON parse error. With its Retry-After,
  // where it has one: a proxy's rate limit or maintenance page says only there when to run the operation again.
  if (!isGraphQLAnswer(answer)) {
    const retryAfter = response.headers.get('retry-after');
    const status = retryAfter === null ? response.status : `${response.status} (Retry-After: ${retryAfter})`;
    // Cut between characters: a page's 500th UTF-16 unit may be the first half of an emoji, which the result pane
    // (JSON) would show as `\ud83d`.
    return failure(`HTTP ${status}: ${text.slice(0, cutEnd(text, SHOWN_PAGE_LENGTH)) || response.statusText}`);
  }
  return withRequestId(answer, response.headers.get('x-request-id'));
}

/**
 * An answer with errors, shown with the request id the gateway answered it under (its `X-Request-Id`), as the
 * answer's `extensions.requestId`: the id its log lines carry, which a person reporting an `Unexpected error.`
 * (or any failure) needs, and which the result pane had no way to show. An answer without errors is left as it is.
 */
function withRequestId(answer: Answer, requestId: string | null): Answer {
  if (requestId === null || !Array.isArray(answer.errors) || answer.errors.length === 0) return answer;
  return { ...answer, extensions: { ...answer.extensions, requestId } };
}

/**
 * Whether an answer shows that the gateway took the token it was sent with. The gateway verifies the token before
 * anything else (src/http/graphql-endpoint.ts), so any answer of its shows it but a 401 and a 503: the one it
 * gives while it cannot verify a token (its key set out of reach), and the one for load, after which a schema
 * request sent at once would most likely be refused the same way, its refusal taking the result pane's place.
 * An answer that is no GraphQL answer (a proxy's rate-limit or error page, whatever its status) shows nothing.
 */
function showsTokenTaken(status: number, answer: unknown): boolean {
  return isGraphQLAnswer(answer) && status !== 401 && status !== 503;
}

/** An answer as GraphQL over HTTP has one: a JSON object with `data` or `errors`. */
function isGraphQLAnswer(value: unknown): value is Answer {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && ('data' in value || 'errors' in value);
}

/** How much of an answer that is no GraphQL answer (a proxy's error page) the result pane shows, in UTF-16 units. */
const SHOWN_PAGE_LENGTH = 500;

/** An answer the page makes up when the gateway's could not be had: a GraphQL error, as the result pane shows them. */
function failure(message: string): Answer {
  return { errors: [{ message }] } as never;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * GraphiQL's storage (localStorage, its keys prefixed `graphiql:`), except that no request headers are ever
 * written: they carry the caller's bearer token, and the history plugin stores each run's headers whatever
 * `shouldPersistHeaders` says. Anything else (tabs, queries, history, favourites) is kept as GraphiQL wrote it.
 */
const NAMESPACE = 'graphiql:';

/** The little of the browser's Storage this page uses. */
interface KeyValueStore {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
  keys(): string[];
}

/**
 * The browser's localStorage, or, where the browser refuses it (site data blocked for this origin: reading
 * `window.localStorage` then throws), a store that lasts as long as the page: the IDE works, it just forgets
 * its tabs and history at the next visit. Read as the script loads, the refusal once left the page blank.
 */
function localOrMemoryStore(): KeyValueStore {
  try {
    const local = window.localStorage;
    return {
      getItem: (key) => local.getItem(key),
      setItem: (key, value) => local.setItem(key, value),
      removeItem: (key) => local.removeItem(key),
      keys: () => Object.keys(local),
    };
  } catch {
    const memory = new Map<string, string>();
    return {
      getItem: (key) => memory.get(key) ?? null,
      setItem: (key, value) => void memory.set(key, value),
      removeItem: (key) => void memory.delete(key),
      keys: () => [...memory.keys()],
    };
  }
}
const browserStore = localOrMemoryStore();
/**
 * The query and variables editors' own texts, stored as typed: they hold no headers, and variables read as
 * JSON and written back would lose their layout (`{"first":2}`), no longer match their tab's, and GraphiQL
 * would open a second tab with them at the next visit.
 */
const EDITOR_TEXTS = new Set([`${NAMESPACE}query`, `${NAMESPACE}variables`]);
const ownKeys = () => browserStore.keys().filter((key) => key.startsWith(NAMESPACE));
/** GraphiQL's title of its docs panel, by which it stores and opens it, and the key of the panel it shows. */
const DOCS_PANEL = 'Documentation Explorer';
const VISIBLE_PANEL_KEY = `${NAMESPACE}visiblePlugin`;
/**
 * Where the schema waits for a token (authentication and introspection on), a docs panel left open at the last
 * visit is opened again once the schema has come (`DocsPanelBack`), not as the page opens: GraphiQL restored it at
 * once, red with "No GraphQL schema available" until an operation had run with a token. Meanwhile GraphiQL is told
 * of no stored panel, and the stored one is kept for the next visit, until GraphiQL stores another.
 */
let docsPanelAwaitsSchema = config.introspection && config.tokenRequired && browserStore.getItem(VISIBLE_PANEL_KEY) === DOCS_PANEL;
const storage: Storage = {
  getItem: (key) => (key === VISIBLE_PANEL_KEY && docsPanelAwaitsSchema ? null : browserStore.getItem(key)),
  setItem: (key, value) => {
    if (key === VISIBLE_PANEL_KEY && value !== DOCS_PANEL) docsPanelAwaitsSchema = false;
    if (key === `${NAMESPACE}headers`) browserStore.removeItem(key);
    else browserStore.setItem(key, EDITOR_TEXTS.has(key) ? value : withoutHeaders(value));
  },
  removeItem: (key) => browserStore.removeItem(key),
  clear: () => ownKeys().forEach((key) => browserStore.removeItem(key)),
  get length() {
    return ownKeys().length;
  },
};

/**
 * A stored JSON value with every `headers` property, at any depth, set to null (as GraphiQL itself writes
 * tabs without their headers: a tab without the key would not load back); other text as it is.
 */
function withoutHeaders(value: string): string {
  try {
    return JSON.stringify(JSON.parse(value), (key, child: unknown) => (key === 'headers' ? null : child));
  } catch {
    return value;
  }
}

/**
 * The docs panel opens by itself at a person's first visit only (nothing of GraphiQL's stored yet), only in a
 * window wide enough for it beside the editors, and only when the gateway answers introspection without a token
 * first. Given at every visit, it would come back at each reload after being closed (GraphiQL stores a closed
 * panel as no panel, which the prop then overrides); in a narrow window (a phone's, a split screen) its 200
 * pixels at least would push the editors and the run button out of sight; with introspection off there is no
 * docs panel (see `Ide`); and where the schema waits for a token, the panel would show GraphiQL's red "No GraphQL
 * schema available" until one was taken (GraphiQL decides whether the panel shows at its first render only; the
 * example's hint says where the docs are then).
 */
const DOCS_PANEL_MIN_WINDOW_WIDTH = 768;
const openDocsPanel =
  config.introspection && !config.tokenRequired && ownKeys().length === 0 && window.matchMedia(`(min-width: ${DOCS_PANEL_MIN_WINDOW_WIDTH}px)`).matches;
// Kept from the first visit on, so that a later one is never taken for the first by what GraphiQL has stored
// meanwhile: a closed panel is stored as no key at all, and its tabs only half a second after a change, so a
// reload soon after closing the panel at a first visit found nothing, and the panel came back. Where the
// browser refuses the write (the origin's storage full, or a private window's that takes nothing), every visit
// is a first one: thrown as the script loads, the refusal left the page blank.
try {
  browserStore.setItem(`${NAMESPACE}visited`, '1');
} catch {
  // Nothing to keep it in.
}

// Headers an earlier version of this page let GraphiQL store are removed on the next visit. A value the
// browser refuses to take back without them (its storage full) is removed whole rather than kept with them.
// GraphiQL's own writes need no such care: it catches a refusal (and makes room in its history for a new
// entry).
for (const key of ownKeys()) {
  const value = browserStore.getItem(key);
  if (value === null) continue;
  try {
    storage.setItem(key, value);
  } catch {
    if (!EDITOR_TEXTS.has(key) && withoutHeaders(value) !== value) browserStore.removeItem(key);
  }
}

/**
 * When the schema (the docs panel) is asked for. With introspection off, never (`schema={null}`): the refusal
 * would stand whatever the token, and GraphiQL shows a refused schema request in the result pane. With
 * authentication on, not as the page opens, before anyone has typed a token in (the refusal, a 401, would fill
 * the result pane as the page opens), but once an operation has run with a token the gateway took (an answer
 * that shows it: `showsTokenTaken`; not a 401, a 503 or a proxy's page, after which the schema request failed
 * too, its failure took the result pane's place, and it was never asked for again), with the headers then in
 * the editor: `schema` goes from null to unset, and GraphiQL asks. Should that request be refused for want of a
 * token all the same (the token expired meanwhile), it is asked for again after an operation the gateway took
 * with other headers; not again with the same (a wrong token stays wrong). Should it (or, without
 * authentication, the one made as the page opens) get no answer from the gateway that says anything of the
 * schema (`schemaUnanswered`), it is asked for again after the next operation the gateway took; not after
 * another refusal, which would stand, and take each operation's result pane.
 */
function SchemaAfterToken({ wanted, want }: { wanted: boolean; want: () => void }): null {
  const isFetching = useGraphiQL((state) => state.isFetching);
  const schemaMissing = useGraphiQL((state) => !state.schema && state.fetchError !== null && !state.isIntrospecting);
  const { introspect } = useGraphiQLActions();
  const wasFetching = useRef(false);
  useEffect(() => {
    const operationEnded = wasFetching.current && !isFetching;
    wasFetching.current = isFetching;
    if (!operationEnded || !config.introspection || !operationTookToken) return;
    if (!wanted) {
      want();
    } else if (schemaMissing && (schemaUnanswered || (schemaNeedsToken && operationHeaders !== schemaHeaders))) {
      void introspect();
    }
  }, [isFetching, schemaMissing, introspect, wanted, want]);
  return null;
}

/** The docs panel left open at the last visit, opened again once the schema has come (see `docsPanelAwaitsSchema`), unless another panel is open by then. */
function DocsPanelBack(): null {
  const schemaCame = useGraphiQL((state) => state.schema !== null && state.schema !== undefined);
  const panelShown = useGraphiQL((state) => state.visiblePlugin !== null);
  const { setVisiblePlugin } = useGraphiQLActions();
  useEffect(() => {
    if (!schemaCame || !docsPanelAwaitsSchema) return;
    docsPanelAwaitsSchema = false;
    if (!panelShown) setVisiblePlugin(DOCS_PANEL);
  }, [schemaCame, panelShown, setVisiblePlugin]);
  return null;
}

/**
 * The class the page's container has while the schema is not to be asked for (`schema={null}`: introspection
 * off, or no token taken yet). GraphiQL's sidebar button "Re-fetch GraphQL schema" then does nothing at all
 * (GraphiQL introspects only without a `schema` prop), and GraphiQL 5 has no prop to leave it out, so ide.css
 * hides it. Once the schema is wanted it is shown, and asks with the headers then in the editor. Its short key,
 * Shift-Ctrl-R, does nothing meanwhile either, but offers nothing on the screen.
 */
const SCHEMA_UNASKED_CLASS = 'ide-schema-unasked';

function Ide() {
  const [schemaWanted, setSchemaWanted] = useState(config.introspection && !config.tokenRequired);
  const want = useCallback(() => setSchemaWanted(true), []);
  return (
    <GraphiQL
      fetcher={fetcher}
      introspectionQueryName={INTROSPECTION_QUERY_NAME}
      {...(schemaWanted ? {} : { schema: null, className: SCHEMA_UNASKED_CLASS })}
      // With introspection off, no docs explorer at all (GraphiQL's documented `null`): its button opened a panel
      // that could only say "No GraphQL schema available". The example's first lines say where the schema is.
      {...(config.introspection ? {} : { referencePlugin: null })}
      storage={storage}
      defaultQuery={config.defaultQuery}
      defaultHeaders={config.defaultHeaders}
      isHeadersEditorEnabled
      shouldPersistHeaders={false}
      defaultEditorToolsVisibility="headers"
      {...(openDocsPanel ? { visiblePlugin: DOCS_PANEL } : {})}
    >
      <GraphiQL.Footer>
        <SchemaAfterToken wanted={schemaWanted} want={want} />
        <DocsPanelBack />
      </GraphiQL.Footer>
    </GraphiQL>
  );
}

createRoot(document.getElementById('graphiql')!).render(<Ide />);
