import { once } from 'node:events';
import { request, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
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

/** An answer handed back as it came. */
function passOn(answer: IncomingMessage, res: ServerResponse): void {
  res.writeHead(answer.statusCode!, answer.headers);
  answer.pipe(res);
}

/**
 * Forwards `req` to `url` as a proxy in front of a server does: its method, `headers` (its own unless given) and
 * body; the server's answer goes back through `answer` (as it came unless given). A forward that fails drops the
 * client's connection.
 */
export function forward(
  req: IncomingMessage,
  res: ServerResponse,
  url: string,
  { headers = req.headers, answer = passOn }: { headers?: IncomingHttpHeaders; answer?: (answer: IncomingMessage, res: ServerResponse) => void } = {},
): void {
  const onward = request(url, { method: req.method, headers }, (served) => answer(served, res));
  onward.on('error', () => res.destroy());
  req.pipe(onward);
}
