import { once } from 'node:events';
import { createServer as createHttpServer, request, Server as HttpServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, Server as HttpsServer, type ServerOptions } from 'node:https';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

/**
 * Starts `server` listening on a free port of 127.0.0.1 and resolves with that port. A server that cannot listen
 * rejects with its 'error', where a bare `listen(0, '127.0.0.1', resolve)` left the test waiting for its timeout.
 */
export async function listenOnLoopback(server: Server): Promise<number> {
  const listening = once(server, 'listening');
  server.listen(0, '127.0.0.1');
  await listening;
  return (server.address() as AddressInfo).port;
}

/**
 * Stops a server a test started and resolves once it has closed. An HTTP(S) server's connections are ended first,
 * those in use and kept alive alike: `close()` alone waits for every one a client still holds open. A plain
 * `net` server's connections are the test's own to end. A server already closed (by the test, or never started)
 * is no failure; any other error closing it is.
 */
export async function closeServer(server: Server): Promise<void> {
  if (server instanceof HttpServer || server instanceof HttpsServer) server.closeAllConnections();
  await new Promise<void>((resolve, reject) =>
    server.close((error) => (!error || (error as NodeJS.ErrnoException).code === 'ERR_SERVER_NOT_RUNNING' ? resolve() : reject(error))),
  );
}

/**
 * A loopback port known closed: one the system handed out free a moment ago, listened on, then closed, so a
 * connection to it is refused. A fixed port (9, "discard") is not: anything may listen there.
 */
export async function closedPort(): Promise<number> {
  const server = createServer();
  const port = await listenOnLoopback(server);
  await closeServer(server);
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

/**
 * A POST to /graphql as the raw bytes of an HTTP/1.1 request, for tests that write on a socket themselves
 * (pipelining, a client that stops reading): `request` is the body's `query`, or the whole body.
 */
export function rawGraphQLPost(request: string | Record<string, unknown>): string {
  const body = JSON.stringify(typeof request === 'string' ? { query: request } : request);
  return `POST /graphql HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
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

/** An egress proxy of the tests' own: CONNECT only, as the gateway uses one. */
export interface ConnectProxy {
  /** `http://127.0.0.1:<port>` (`https://` with `tls`). */
  url: string;
  /** `127.0.0.1:<port>`: how the gateway names it. */
  hostPort: string;
  /**
   * Connections accepted (with `tls`, each a handshake), CONNECT requests received, tunnels opened for them, and
   * CONNECTs left unanswered (`'no answer'`) that their client gave up on, closing its connection.
   */
  readonly counts: { connections: number; connects: number; tunnels: number; givenUp: number };
  /** Connections accepted and not closed yet (a tunnel's among them): what its clients still hold open. */
  readonly openConnections: number;
  /** Each CONNECT's `Proxy-Authorization`, in turn (`undefined`: none). */
  readonly authorizations: Array<string | undefined>;
  /**
   * From now on, answer each CONNECT with `status` instead of opening a tunnel, or leave it unanswered (`'no
   * answer'`: a proxy stalled), or open them again (`undefined`); open tunnels and unanswered CONNECTs are closed.
   */
  refuseWith(status: number | 'no answer' | undefined): Promise<void>;
  /** With `tls`: the certificate (PEM) it presents from now on; open tunnels are closed. */
  present(cert: Buffer): Promise<void>;
  close(): Promise<void>;
}

/**
 * A CONNECT proxy on a free loopback port whose tunnels lead where `route` says for the authority asked for
 * (`contextio.test:80`), by the `127.0.0.1` port it returns; an authority it has no port for is answered 502,
 * as a proxy that cannot reach the host does. With `tls` (a key and certificate), an https:// proxy.
 */
export async function startConnectProxy(route: (authority: string) => number | undefined, tls?: { key: Buffer; cert: Buffer } & Pick<ServerOptions, 'requestCert' | 'rejectUnauthorized' | 'ca'>): Promise<ConnectProxy> {
  const counts = { connections: 0, connects: 0, tunnels: 0, givenUp: 0 };
  const authorizations: Array<string | undefined> = [];
  const open = new Set<Socket>();
  let refusal: number | 'no answer' | undefined;
  let closing = false;
  // An https:// proxy is reached over TLS, its CONNECTs and tunnels inside that session.
  const server = tls === undefined ? createHttpServer() : createHttpsServer(tls);
  let openConnections = 0;
  server.on('connection', (socket: Socket) => {
    counts.connections++;
    openConnections++;
    socket.on('close', () => openConnections--);
  });
  server.on('connect', (req: IncomingMessage, client: Socket, head: Buffer) => {
    counts.connects++;
    authorizations.push(req.headers['proxy-authorization']);
    // Node takes its own listeners off a socket handed over for CONNECT, so a client's reset unheard ended the test
    // file with an uncaught ECONNRESET: the gateway's after a refused CONNECT, on Node 20.18.0. The socket closes
    // itself after an error.
    client.on('error', () => undefined);
    if (refusal === 'no answer') {
      open.add(client);
      // The server's sockets are half-open: the client's end closes this one.
      client.on('end', () => client.destroy());
      client.on('close', () => {
        open.delete(client);
        if (!closing) counts.givenUp++;
      });
      return;
    }
    const port = route(req.url ?? '');
    if (refusal !== undefined || port === undefined) {
      client.end(`HTTP/1.1 ${refusal ?? 502} Refused\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`);
      return;
    }
    const onward = connect(port, '127.0.0.1', () => {
      counts.tunnels++;
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      onward.write(head);
      onward.pipe(client).pipe(onward);
    });
    for (const socket of [client, onward]) {
      open.add(socket);
      socket.on('close', () => open.delete(socket));
      socket.on('error', () => (socket === client ? onward : client).destroy());
    }
  });
  const port = await listenOnLoopback(server);
  const closeTunnels = async () => {
    closing = true;
    const closed = [...open].map((socket) => once(socket, 'close'));
    for (const socket of open) socket.destroy();
    await Promise.all(closed);
    closing = false;
  };
  return {
    url: `${tls === undefined ? 'http' : 'https'}://127.0.0.1:${port}`,
    hostPort: `127.0.0.1:${port}`,
    counts,
    get openConnections() {
      return openConnections;
    },
    authorizations,
    async refuseWith(status) {
      refusal = status;
      await closeTunnels();
    },
    async present(cert) {
      if (tls === undefined || !('setSecureContext' in server)) throw new Error('an http:// proxy presents no certificate');
      server.setSecureContext({ key: tls.key, cert });
      await closeTunnels();
    },
    async close() {
      await closeTunnels();
      await closeServer(server);
    },
  };
}

/** Every byte of `stream` (a request's body, an answer's), once it has ended. */
export async function readAll(stream: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/**
 * Sends `req` on to `origin` (its method, target and headers) with `body`, already read, as a front that decides
 * what to answer once it has the upstream's answer does: that answer, read whole.
 */
export function forwardWhole(origin: string, req: IncomingMessage, body: Buffer): Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const onward = request(`${origin}${req.url}`, { method: req.method, headers: req.headers }, (answer) => {
      readAll(answer).then((bytes) => resolve({ status: answer.statusCode!, headers: answer.headers, body: bytes }), reject);
    });
    onward.on('error', reject);
    onward.end(body);
  });
}
