import { randomUUID } from 'node:crypto';
import { GraphQLError } from 'graphql';
import { authorizationHeader, encodeFormPairs, protocolParams, sign, type OAuthParam } from '../../src/oauth/signature.ts';

/**
 * The naive baseline's REST access, as a hand-written gateway typically has it: `fetch` (Node's bundled
 * undici, default keep-alive agent) and OAuth 1.0a signing per call, no retries, JSON parsed as it comes.
 */
export interface NaiveUpstreamOptions {
  baseUrl: string;
  consumerKey: string;
  consumerSecret: string;
}

export class NaiveUpstream {
  constructor(readonly options: NaiveUpstreamOptions) {}

  get<T>(path: string): Promise<T> {
    return this.#request<T>('GET', path, []);
  }

  post<T>(path: string, form: Record<string, string | undefined>): Promise<T> {
    const pairs: OAuthParam[] = Object.entries(form).flatMap(([k, v]) => (v === undefined ? [] : [[k, v] as const]));
    return this.#request<T>('POST', path, pairs);
  }

  async #request<T>(method: string, path: string, form: OAuthParam[]): Promise<T> {
    const url = this.options.baseUrl + path;
    const protocol = protocolParams(this.options.consumerKey, randomUUID(), String(Math.floor(Date.now() / 1000)));
    const signature = sign({ method, baseUrl: url, params: [...form, ...protocol], consumerSecret: this.options.consumerSecret });
    const headers: Record<string, string> = { authorization: authorizationHeader(protocol, signature), accept: 'application/json' };
    let body: string | undefined;
    if (method === 'POST') {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = encodeFormPairs(form);
    }
    const response = await fetch(url, { method, headers, body });
    if (!response.ok) {
      await response.body?.cancel();
      throw new GraphQLError(`upstream ${method} ${path} failed with HTTP ${response.status}`, { extensions: { code: 'UPSTREAM_ERROR' } });
    }
    return (await response.json()) as T;
  }
}
