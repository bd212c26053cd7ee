import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { describe, it } from 'node:test';
import { Shutdown } from '../../src/http/shutdown.ts';
import { createLogger, silentLogger } from '../../src/logging/logger.ts';
import { OperationDeadlineExceeded, OperationScope } from '../../src/upstream/cancellation.ts';
import { manualTimer } from '../helpers/clock.ts';
import { eventually } from '../helpers/eventually.ts';

/** An HTTP server as `closeServer` uses it, whose close completes one turn later with nothing left open. */
function closingServer(): Server {
  const server = {
    close: (done: () => void) => (setImmediate(done), server),
    closeAllConnections: () => {},
    closeIdleConnections: () => {},
  };
  return server as unknown as Server;
}

/**
 * An HTTP server as `closeServer` uses it, holding a connection that keeps it open until all connections are
 * closed, or until the test lets that connection end by itself (`connectionEnded`).
 */
function heldServer(): { server: Server; cut: () => boolean; connectionEnded: () => void } {
  let done: (() => void) | undefined;
  let cut = false;
  const server = {
    close: (callback: () => void) => ((done = callback), server),
    closeAllConnections: () => ((cut = true), done?.()),
    closeIdleConnections: () => {},
  };
  return { server: server as unknown as Server, cut: () => cut, connectionEnded: () => done?.() };
}

/** A connection as the shutdown tracks it, that has sent nothing yet: counts the times it is destroyed. */
function unusedConnection(): { socket: Socket; destroyed: () => number } {
  let destroyed = 0;
  const socket = Object.assign(new EventEmitter(), { bytesRead: 0, destroy: () => destroyed++ });
  return { socket: socket as unknown as Socket, destroyed: () => destroyed };
}

/** Lets `turns` event-loop turns pass: enough for `closeServer` to have closed the server and begun waiting. */
async function turns(count: number): Promise<void> {
  for (let i = 0; i < count; i++) await new Promise((resolve) => setImmediate(resolve));
}

describe('Shutdown', () => {
  it('waits for the last operation still open after the server closed, not the first, before it is done', async () => {
    // Its operations' log lines are written as their responses close: a process exiting once the first had
    // would lose the others'.
    const shutdown = new Shutdown({ logger: silentLogger, drainMs: 0, graceMs: 60_000 });
    const [first, second] = [new OperationScope('first'), new OperationScope('second')];
    shutdown.operationStarted(first);
    shutdown.operationStarted(second);
    let done = false;
    const closing = shutdown.closeServer(closingServer()).then(() => (done = true));
    await turns(5);
    assert.equal(done, false, 'two operations still open');
    shutdown.operationClosed(first);
    await turns(5);
    assert.equal(done, false, 'one operation still open');
    shutdown.operationClosed(second);
    await closing;
    assert.equal(shutdown.begun, true);
  });

  it('given a timer, waits out its drain and grace period only as that timer fires them, whatever real time passes', async () => {
    // random-shutdown.test.ts ends each by hand: a grace period ended by real time would race the test's releases.
    const shutdownTimer = manualTimer();
    const shutdown = new Shutdown({ logger: silentLogger, drainMs: 5, graceMs: 5, timer: shutdownTimer.timer });
    const operation = new OperationScope('held');
    shutdown.operationStarted(operation);
    let done = false;
    const held = heldServer();
    const closing = shutdown.closeServer(held.server).then(() => (done = true));
    await shutdownTimer.asked();
    assert.deepEqual(shutdownTimer.waiting(), [5], 'the drain, asked of the timer');
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(shutdownTimer.waiting(), [5], 'the drain still running, ten times its length later');
    shutdownTimer.fireAll();
    await shutdownTimer.asked();
    assert.deepEqual(shutdownTimer.waiting(), [5], 'the grace period, asked of the timer');
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(operation.aborted, false, 'the grace period not over, ten times its length later');
    assert.equal(done, false);
    shutdownTimer.fireAll();
    assert.ok(operation.reason instanceof OperationDeadlineExceeded, 'aborted as the grace period ends');
    await shutdownTimer.asked();
    assert.deepEqual(shutdownTimer.waiting(), [1_000], 'the cut of the connections still open, a second later');
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual([held.cut(), shutdown.connectionsCut, done], [false, false, false], 'nothing cut before the timer fires the cut');
    shutdownTimer.fireAll();
    assert.deepEqual([held.cut(), shutdown.connectionsCut], [true, true], 'the connections cut as it fires');
    await shutdownTimer.asked();
    assert.deepEqual(shutdownTimer.waiting(), [1_000], 'the wait for the last operation lines');
    shutdown.operationClosed(operation);
    await closing;
    assert.deepEqual(shutdownTimer.waiting(), [], 'the wait for the last lines given back once they are written');
  });

  it('forgets a connection once it closes: its idle sweep destroys only those still open that sent nothing', async () => {
    // Kept, every connection the server ever accepted would stay referenced for the process's life.
    const shutdown = new Shutdown({ logger: silentLogger, drainMs: 0, graceMs: 60_000 });
    const [open, closed] = [unusedConnection(), unusedConnection()];
    shutdown.connectionOpened(open.socket);
    shutdown.connectionOpened(closed.socket);
    closed.socket.emit('close');
    const held = heldServer();
    const closing = shutdown.closeServer(held.server);
    await eventually(() => open.destroyed() > 0, { what: 'the idle sweep closing the connection that sent nothing' });
    assert.equal(closed.destroyed(), 0, 'a connection closed before the sweep is not swept');
    held.connectionEnded();
    await closing;
  });

  it('stops its idle sweep once the server has closed: a gateway stopped in a process that goes on leaves it no timer', async () => {
    // Left running (unref'd, so never holding the process open), the sweep's timer kept the closed server, and all
    // that it reaches, for the process's life: one more for each gateway a process started and stopped.
    let sweeps = 0;
    const server = { ...closingServer(), closeIdleConnections: () => void sweeps++ };
    const shutdown = new Shutdown({ logger: silentLogger, drainMs: 0, graceMs: 60_000 });
    await shutdown.closeServer(server as unknown as Server);
    const swept = sweeps;
    // Several of its 50 ms rounds.
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(sweeps, swept, 'the server swept after it closed');
  });

  it('gives back its grace period once the server closes within it: nothing of it fires after', async () => {
    // Left waiting, it would end a grace period after the shutdown was done: aborting whatever was then in flight,
    // and a second later marking the connections cut, as an operation line still to come would then say.
    const shutdownTimer = manualTimer();
    const shutdown = new Shutdown({ logger: silentLogger, drainMs: 0, graceMs: 5, timer: shutdownTimer.timer });
    const held = heldServer();
    const closing = shutdown.closeServer(held.server);
    await shutdownTimer.asked();
    assert.deepEqual(shutdownTimer.waiting(), [5], 'the grace period');
    held.connectionEnded();
    await closing;
    assert.deepEqual(shutdownTimer.waiting(), [], 'the grace period given back as the server closed');
  });

  it('gives back the cut once the server closes within the second after the grace period: nothing is cut after', async () => {
    // Left waiting, the cut would fire on a closed server, and say its connections were cut when none was.
    const shutdownTimer = manualTimer();
    const shutdown = new Shutdown({ logger: silentLogger, drainMs: 0, graceMs: 5, timer: shutdownTimer.timer });
    const operation = new OperationScope('held');
    shutdown.operationStarted(operation);
    const held = heldServer();
    const closing = shutdown.closeServer(held.server);
    await shutdownTimer.asked();
    shutdownTimer.fireAll();
    await shutdownTimer.asked();
    assert.deepEqual(shutdownTimer.waiting(), [1_000], 'the cut, a second after the grace period');
    shutdown.operationClosed(operation);
    held.connectionEnded();
    await closing;
    assert.deepEqual(shutdownTimer.waiting(), [], 'the cut given back as the server closed');
    assert.deepEqual([held.cut(), shutdown.connectionsCut], [false, false]);
  });

  it('warns as its grace period ends only of operations still running: with none, a connection still open (a slow reader) is no such warning', async () => {
    const lines: string[] = [];
    const shutdownTimer = manualTimer();
    const shutdown = new Shutdown({ logger: createLogger('warn', (line) => lines.push(line)), drainMs: 0, graceMs: 5, timer: shutdownTimer.timer });
    const held = heldServer();
    const closing = shutdown.closeServer(held.server);
    await shutdownTimer.asked();
    shutdownTimer.fireAll();
    assert.deepEqual(lines, [], 'a warning of operations aborted when none ran');
    held.connectionEnded();
    await closing;
  });

  it('holds the process open by no timer of its own after the drain: a server that never closes does not keep a process alive through it', async () => {
    // Its grace period's end, the cut and the idle sweep only serve a server still open, whose connections hold
    // the process open themselves; the wait for the last operation lines only serves lines a process may lose.
    const timers = () => process.getActiveResourcesInfo().filter((resource) => resource === 'Timeout').length;
    const before = timers();
    const waiting = new Shutdown({ logger: silentLogger, drainMs: 0, graceMs: 60_000 });
    const held = heldServer();
    const closing = waiting.closeServer(held.server);
    await turns(5);
    assert.equal(timers(), before, 'a timer of the shutdown holding the process open during its grace period');
    held.connectionEnded();
    await closing;

    // A grace period over at once: the cut of the connections a second later, then, with an operation still open
    // once the server closed, the wait of up to a second for its line.
    const over = new Shutdown({ logger: silentLogger, drainMs: 0, graceMs: 0 });
    const operation = new OperationScope('held');
    over.operationStarted(operation);
    const cutWaiting = heldServer();
    const overClosing = over.closeServer(cutWaiting.server);
    await eventually(() => operation.aborted, { what: 'the grace period over' });
    assert.equal(timers(), before, 'the cut’s timer holding the process open');
    cutWaiting.connectionEnded();
    await turns(5);
    assert.equal(timers(), before, 'the wait for the last operation lines holding the process open');
    over.operationClosed(operation);
    await overClosing;
  });

  it('aborts every operation still running when its grace period ends, though aborting one of them throws', async () => {
    // An operation's cleanup failing (an abort listener throwing) must not leave the others running, nor throw
    // out of the grace period's timer, which would end the process.
    const lines: string[] = [];
    const shutdownTimer = manualTimer();
    const shutdown = new Shutdown({ logger: createLogger('error', (line) => lines.push(line)), drainMs: 0, graceMs: 5, timer: shutdownTimer.timer });
    const [failing, other] = [new OperationScope('failing'), new OperationScope('other')];
    failing.addEventListener('abort', () => {
      throw new Error('cleanup failed');
    });
    shutdown.operationStarted(failing);
    shutdown.operationStarted(other);
    const held = heldServer();
    const closing = shutdown.closeServer(held.server);
    await shutdownTimer.asked();
    shutdownTimer.fireAll();
    assert.deepEqual([failing.aborted, other.aborted], [true, true], 'both operations aborted');
    const said = lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line['message'] === 'aborting an operation at shutdown failed');
    // Which operation's: its request id, as its operation line has it.
    assert.deepEqual(said.map((line) => [line['level'], line['requestId'], line['error']]), [['error', 'failing', 'cleanup failed']]);
    shutdown.operationClosed(failing);
    shutdown.operationClosed(other);
    held.connectionEnded();
    await closing;
  });
});
