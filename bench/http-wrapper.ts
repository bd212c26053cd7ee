import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HeaderMap, type ApolloServer, type BaseContext } from '@apollo/server';

/**
 * The minimal node:http front the naive and bare contenders share, shaped like the gateway's own
 * (node:http + executeHTTPGraphQLRequest), so the comparison is about resolvers and the upstream path,
 * not HTTP frameworks.
 */
export interface Served {
  url: string;
  /** Headers every request to it carries (the deployed gateway's Bearer token). */
  headers?: Record<string, string>;
  close(): Promise<void>;
}

export async function serveApollo<C extends BaseContext>(apollo: ApolloServer<C>, context: () => Promise<C>): Promise<Served> {
  await apollo.start();
  const server: Server = createServer((req, res) => {
    handle(req)
      .then(({ status, headers, body }) => {
        res.writeHead(status, headers);
        res.end(body);
      })
      .catch((error: unknown) => {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ errors: [{ message: error instanceof Error ? error.message : String(error) }] }));
      });
  });

  async function handle(req: IncomingMessage) {
    const url = new URL(req.url ?? '/', 'http://bench.invalid');
    if (url.pathname !== '/graphql') return { status: 404, headers: {}, body: '' };
    const chunks: Buffer[] = [];
    for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
    const text = Buffer.concat(chunks).toString('utf8');
    const headers = new HeaderMap();
    for (const [key, value] of Object.entries(req.headers)) {
      if (value !== undefined) headers.set(key, Array.isArray(value) ? value.join(', ') : value);
    }
    const response = await apollo.executeHTTPGraphQLRequest({
      httpGraphQLRequest: { method: req.method ?? 'POST', headers, search: url.search, body: text ? (JSON.parse(text) as unknown) : undefined },
      context,
    });
    let body = '';
    if (response.body.kind === 'complete') body = response.body.string;
    else for await (const chunk of response.body.asyncIterator) body += chunk;
    return { status: response.status ?? 200, headers: Object.fromEntries(response.headers), body };
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/graphql`,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await apollo.stop();
    },
  };
}
