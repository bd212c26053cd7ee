import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { silentLogger } from '../../src/logging/logger.ts';
import { UpstreamClient } from '../../src/upstream/client.ts';
import type { Served } from '../http-wrapper.ts';
import { scenarios, type Variables } from '../scenarios.ts';
import type { UpstreamSettings } from './settings.ts';

/**
 * The floor: no GraphQL at all. `POST /<scenario>` with the same JSON body the GraphQL contenders get
 * makes that scenario's upstream calls with the project's UpstreamClient, hand-written and as parallel as
 * they can be, and answers the same shape of JSON.
 */
export async function startDirect(upstream: UpstreamSettings): Promise<Served> {
  const client = new UpstreamClient({ ...upstream, timeoutMs: 10_000, logger: silentLogger });
  const byPath = new Map(scenarios.map((s) => [`/${s.id}`, s]));
  const server = createServer((req, res) => {
    const scenario = byPath.get(req.url ?? '');
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (!scenario) {
        res.writeHead(404).end();
        return;
      }
      const { variables = {} } = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { variables?: Variables };
      scenario.direct(client, variables).then(
        (data) => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ data }));
        },
        (error: unknown) => {
          res.writeHead(502, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ errors: [{ message: error instanceof Error ? error.message : String(error) }] }));
        },
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    // The runner appends the scenario's path.
    url: `http://127.0.0.1:${port}`,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await client.close();
    },
  };
}
