import assert from 'node:assert/strict';
import { createServer, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test, type TestContext } from 'node:test';
import { loadContender, post } from '../../bench/contender.ts';

/**
 * Under load the bench counted as a failure only an answer that was not 2xx or held `"errors"`: a contender that
 * answered its first operation right (checked before timing) and then, under load, a short or empty answer without
 * errors (`"account": null`, half a list) was timed as if it had done the work. Each answer under load must be the
 * first one, byte for byte: the bench's operations read data nothing changes, or change it to the same.
 */

const RIGHT = '{"data":{"account":{"id":"a1","username":"user0"}}}\n';
const WRONG = '{"data":{"account":null}}\n';

/** A stand-in contender on loopback answering each request with `handler`, closed when the test `t` ends; its URL. */
async function standIn(t: TestContext, handler: RequestListener): Promise<string> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`;
}

/** A stand-in contender answering its first operation right and every later one with less data, without errors. */
function rightThenWrong(t: TestContext): Promise<string> {
  let answered = 0;
  return standIn(t, (req, res) => {
    req.resume().on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(answered++ === 0 ? RIGHT : WRONG);
    });
  });
}

test('a load counts each answer that is not the checked first answer, errors or not', async (t) => {
  const url = await rightThenWrong(t);
  const to = { url, body: '{"query":"{ account(id: \\"a1\\") { id username } }"}', headers: { 'content-type': 'application/json' } };

  const first = await fetch(url, { method: 'POST', headers: to.headers, body: to.body });
  assert.equal(await first.text(), RIGHT);

  const result = await loadContender({ ...to, answer: RIGHT }, 1, 2);
  assert.ok(result.requests.total > 0, 'the load made no operation');
  assert.equal(result.non2xx, 0);
  assert.equal(result.mismatches, result.requests.total, `${result.mismatches} of ${result.requests.total} wrong answers counted`);
});

/**
 * The bench's operations sent one at a time (the first, checked; those alone; the round-trip probes) waited for their
 * answer without end: a contender that stopped answering (a deadlock, a lost request) held `npm run bench`, which
 * promises to be bounded, for ever, where its loads give up on an answer after autocannon's 10 s.
 */
test('an operation sent alone to a contender that never answers fails after its time, naming where it went', { timeout: 30_000 }, async (t) => {
  const url = await standIn(t, () => {
    // Never answers.
  });
  await assert.rejects(post({ url, body: '{}', headers: { 'content-type': 'application/json' } }, 200), new RegExp(`^Error: ${url} gave no answer within 0\\.2 s$`));
});

/**
 * The operations sent one at a time after the checked first one (the operations alone, whose median the fan-out's
 * latency target is judged on, and the round-trip probes) were timed whatever they answered: a contender answering
 * errors at once, or less data, would have shown a fast p50 alone and fewer round trips.
 */
test('an operation sent alone on a checked target fails when its answer is not the checked first answer', async (t) => {
  const url = await rightThenWrong(t);
  const checked = { url, body: '{}', headers: { 'content-type': 'application/json' }, answer: RIGHT };
  assert.equal((await post(checked)).text, RIGHT);
  await assert.rejects(post(checked), (error: Error) => error.message === `${url} answered other than its checked first answer: HTTP 200 ${WRONG}`);
});
