import type { Socket } from 'node:net';
import { unrefTimer, type WaitTimer } from '../support/wait-timer.ts';

/*
 * A lingering close (nginx's lingering_close, Apache's): a connection answered before its request's body has all
 * arrived (a refusal: 413, 415, 401 past MAX_BODY_BYTES, a wrong Host …) is closed only after what its client still
 * sends is read and dropped. Closed at once, the kernel resets a connection that has unread bytes, and a client still
 * sending its body meets the reset (EPIPE, ECONNRESET), which drops the answer from its kernel unread: nginx, still
 * writing the body, answered 502 instead of the gateway's 413 about half the time (it reads an answer that comes
 * while it writes, so with the linger it passed the 413 on for a body of 100 MiB). The answer goes out, then the
 * gateway's half of the connection closes (a FIN: its client reads the answer and the end after it), and what still
 * arrives is dropped unparsed, until the client closes its half or a bound is reached: then the connection is
 * destroyed, reset if more was still coming.
 */

/** Bytes a linger drops at most, as a multiple of MAX_BODY_BYTES: 4 MiB at its default of 1 MiB. */
export const LINGER_BODY_MULTIPLE = 4;

/** How long a linger lasts at most, from the answer's end. */
export const LINGER_MS = 5_000;

export interface LingerBounds {
  /** Bytes dropped at most: past them the connection is destroyed. */
  maxBytes: number;
  /** The timer of the linger's end, LINGER_MS after its start (GatewayOptions.lingerTimer); unset, real timers. */
  timer?: WaitTimer | undefined;
}

/** The bounds of the gateway's lingers, given its MAX_BODY_BYTES. */
export function lingerBounds(maxBodyBytes: number, timer?: WaitTimer): LingerBounds {
  return { maxBytes: LINGER_BODY_MULTIPLE * maxBodyBytes, timer };
}

/**
 * Closes `socket`, its answer written, without resetting a client still sending: half-closes it once the answer is
 * out, then reads and drops what arrives until the client closes its half, `bounds.maxBytes` have come, or
 * LINGER_MS have passed. Node's HTTP parser reads none of it: no request behind the refused one is run, and
 * dropped bytes cost no parsing. The connection stays one of the server's until it closes, so a shutdown's cut
 * (closeAllConnections) ends a linger as it ends any connection.
 */
export function lingeringClose(socket: Socket, bounds: LingerBounds): void {
  if (socket.destroyed) return;
  // Node's own 'data' listener feeds its HTTP parser. Taken off first: adding one after it (through the listener
  // wrapper Node puts on its server's sockets) takes the socket back from the parser's direct reads, so that every
  // byte comes through the listener below.
  for (const listener of socket.listeners('data')) socket.off('data', listener as (chunk: Buffer) => void);
  let dropped = 0;
  socket.on('data', (chunk: Buffer) => {
    dropped += chunk.length;
    if (dropped > bounds.maxBytes) socket.destroy();
  });
  // The client closed its half (it has read the answer, or given up): nothing more will come.
  socket.once('end', () => socket.destroy());
  const cancel = (bounds.timer ?? unrefTimer)(() => socket.destroy(), LINGER_MS);
  socket.once('close', cancel);
  socket.end();
  readOn(socket);
}

/**
 * Has `socket` read again, whatever stopped it: its parser, while it read the socket itself, paused it for a body
 * nobody took, which leaves the stream's own reading flagged as under way, so that neither `resume()` nor `read(0)`
 * starts it. Started on its handle, as Node's server does for a socket its parser reads (onSocketResume).
 */
function readOn(socket: Socket): void {
  socket.resume();
  const handle = (socket as Socket & { _handle?: { reading?: boolean; readStart?(): number } | null })._handle;
  // Node's internals: should a later Node lack them, the linger still ends at its bounds, the connection destroyed.
  if (handle && !handle.reading && typeof handle.readStart === 'function') {
    handle.reading = true;
    if (handle.readStart() !== 0) socket.destroy();
  }
}

/**
 * Makes the close Node gives a connection after its last answer (its `destroySoon`, as the answer marked to close
 * it ends) a lingering close. Node calls it on the socket itself, with no hook between: replaced on this socket
 * only.
 */
export function lingerAfterLastAnswer(socket: Socket, bounds: LingerBounds): void {
  socket.destroySoon = () => lingeringClose(socket, bounds);
}
