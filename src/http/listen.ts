import type { Server } from 'node:net';
import { settingValue } from '../support/shortened.ts';
import { canonicalHost, isLoopbackHost } from '../support/url.ts';

/** Where a server was asked to listen, and the environment variables that said so. */
export interface ListenTarget {
  host: string;
  port: number;
  hostVariable: string;
  portVariable: string;
}

/**
 * One line saying why a server could not listen, naming the variable to change: the start-up of `npm start`
 * and `npm run emulator` promises that for a bad setting, and Node's own message ("listen EADDRINUSE:
 * address already in use 127.0.0.1:4000") names none. Undefined for any other failure, which keeps its own.
 */
export function describeListenFailure(error: unknown, target: ListenTarget): string | undefined {
  const { port, hostVariable, portVariable } = target;
  // The setting as given: one line, however long or whatever it holds.
  const host = settingValue(target.host);
  switch ((error as NodeJS.ErrnoException | undefined)?.code) {
    case 'EADDRINUSE':
      return `${portVariable}=${port}: the port is already in use on ${host} (choose another; 0 picks a free one)`;
    case 'EACCES':
      // Only the ports below 1024 need privileges: above them the system itself refused this one.
      return `${portVariable}=${port}: not allowed to listen on this port (${port > 0 && port < 1024 ? 'ports below 1024 need privileges' : 'the system forbids it: a port it reserves, or its security policy such as SELinux'}; choose another)`;
    case 'EADDRNOTAVAIL':
      return `${hostVariable}=${host}: not an address of this machine, so nothing can listen on it`;
    // Node's own line ("listen EINVAL: invalid argument fe80::1") names neither the variable nor the reason.
    case 'EINVAL':
      return `${hostVariable}=${host}: not an address a server can listen on (an IPv6 link-local address needs its interface, as in fe80::1%eth0)`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_FAIL':
      return `${hostVariable}=${host}: the name does not resolve to an address`;
    default:
      return undefined;
  }
}

/**
 * Whether two servers asked to listen on `a` and `b` (HOST values) can take one port from each other: the same
 * address however written (`::1`, `0:0:0:0:0:0:0:1`; a name in any case), `localhost` and a loopback address (it
 * resolves to one), or either one every interface (`0.0.0.0`, or `::`, which on Linux takes IPv4 too). A false
 * yes only mis-words an EADDRINUSE; a false no leaves it the generic "already in use".
 */
export function mayShareAPort(a: string, b: string): boolean {
  const [x, y] = [canonicalHost(a), canonicalHost(b)];
  const everyInterface = (host: string) => host === '0.0.0.0' || host === '::';
  const localhostAnd = (name: string, other: string) => name === 'localhost' && isLoopbackHost(other);
  return x === y || everyInterface(x) || everyInterface(y) || localhostAnd(x, y) || localhostAnd(y, x);
}

/**
 * Listens on `host`:`port`; rejects with the server's error (a port in use, an address not this machine's).
 * `backlog`: connections the system may hold, handshake done, until the process takes them (Node's default, 511;
 * the system caps it at its own maximum, net.core.somaxconn).
 */
export function listenOn(server: Server, port: number, host: string, backlog?: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host, ...(backlog === undefined ? {} : { backlog }) }, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
