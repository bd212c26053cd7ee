import type { Logger } from './logger.ts';
import { RequestApi } from './loaders/request-api.ts';
import type { UpstreamClient } from './upstream/client.ts';

/** What every resolver of one GraphQL request receives. Built per request, so nothing leaks between callers. */
export interface GatewayContext {
  /** The upstream, through this request's loaders. */
  readonly api: RequestApi;
  readonly requestId: string;
  readonly logger: Logger;
}

export interface ContextDeps {
  client: UpstreamClient;
  logger: Logger;
}

/** Builds a request's context; `signal` aborts its upstream work when the client goes away. */
export function createContext(deps: ContextDeps, requestId: string, signal?: AbortSignal): GatewayContext {
  return { api: new RequestApi(deps.client, signal), requestId, logger: deps.logger };
}
