import { createServer, type AddressInfo } from 'node:net';

/**
 * A loopback port known closed: one the system handed out free a moment ago, listened on, then closed, so a
 * connection to it is refused. A fixed port (9, "discard") is not: anything may listen there.
 */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
  return port;
}
