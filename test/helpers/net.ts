import { once } from 'node:events';
import { connect, createServer, type AddressInfo } from 'node:net';

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

/**
 * Writes `bytes` on a new connection to the server at `url` and resolves with all it wrote back, once it has
 * closed the connection (the test's timeout otherwise): for what `fetch` cannot send or does not show.
 */
export async function exchange(url: string, bytes: string): Promise<string> {
  const socket = connect(Number(new URL(url).port), '127.0.0.1');
  try {
    let received = '';
    socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
    const closed = once(socket, 'close');
    socket.write(bytes);
    await closed;
    return received;
  } finally {
    socket.destroy();
  }
}
