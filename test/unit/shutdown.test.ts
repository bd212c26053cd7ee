import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import { describe, it } from 'node:test';
import { Shutdown } from '../../src/http/shutdown.ts';
import { silentLogger } from '../../src/logger.ts';
import { OperationScope } from '../../src/upstream/cancellation.ts';

/** An HTTP server as `closeServer` uses it, whose close completes one turn later with nothing left open. */
function closingServer(): Server {
  const server = {
    close: (done: () => void) => (setImmediate(done), server),
    closeAllConnections: () => {},
    closeIdleConnections: () => {},
  };
  return server as unknown as Server;
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
});
