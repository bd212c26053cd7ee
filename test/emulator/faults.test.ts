import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { describe, test } from 'node:test';
import { manualTimer } from '../helpers/clock.ts';
import { eventually } from '../helpers/eventually.ts';
import { emulatorOptionsFromEnv } from '../../src/emulator/config.ts';
import { api, emulatorFor, signRequest } from './helpers.ts';

const ADA = '52daabefcea6f9c35a4a0997';

describe('faults, request log and in-flight counters', () => {
  test('the request log records method, raw path, query and status, rejected requests included', async (t) => {
    const emu = await emulatorFor(t);
    await api(emu, '/accounts?limit=5&offset=0');
    await api(emu, `/accounts/${ADA}/sources/ada::imap.example.com`);
    await api(emu, `/accounts/${ADA}/sources/ada%3A%3Aimap.example.com`);
    await api(emu, '/connect_tokens/', { authorization: null });
    await api(emu, '/connect_tokens', { form: { callback_url: 'http://localhost/cb' } });
    assert.deepEqual(emu.requests, [
      { method: 'GET', path: '/accounts', query: 'limit=5&offset=0', status: 200 },
      { method: 'GET', path: `/accounts/${ADA}/sources/ada::imap.example.com`, query: '', status: 200 },
      { method: 'GET', path: `/accounts/${ADA}/sources/ada%3A%3Aimap.example.com`, query: '', status: 200 },
      { method: 'GET', path: '/connect_tokens/', query: '', status: 401 },
      { method: 'POST', path: '/connect_tokens', query: '', status: 201 },
    ]);
    emu.clearRequests();
    assert.equal(emu.requests.length, 0);
    await (await fetch(`${emu.url}/accounts`, { headers: { 'x-request-id': 'op-1' } })).text();
    assert.deepEqual(emu.requests, [{ method: 'GET', path: '/accounts', query: '', status: 401, requestId: 'op-1' }], 'the X-Request-Id a request carries');
  });

  test('the request log keeps the latest entries up to its limit', async (t) => {
    const emu = await emulatorFor(t, { requestLogLimit: 10 });
    for (let offset = 0; offset < 25; offset++) await api(emu, `/accounts?limit=1&offset=${offset}`);
    const shown = emu.requests.map((r) => r.query);
    assert.deepEqual(shown, Array.from({ length: 10 }, (_, i) => `limit=1&offset=${15 + i}`));
  });

  test('the request log shows no more than its limit, between two trims too', async (t) => {
    // Trimmed a tenth of the limit at a time (at 22 entries for 20): 21 held, the oldest not shown.
    const emu = await emulatorFor(t, { requestLogLimit: 20 });
    for (let offset = 0; offset < 21; offset++) await api(emu, `/accounts?limit=1&offset=${offset}`);
    assert.deepEqual(emu.requests.map((r) => r.query), Array.from({ length: 20 }, (_, i) => `limit=1&offset=${1 + i}`));
  });

  test('resetPeak starts the peak again from the requests still in flight', async (t) => {
    const emu = await emulatorFor(t);
    emu.addFault({ path: '/accounts', hang: true, times: 1 });
    const controller = new AbortController();
    const hung = api(emu, '/accounts', { signal: controller.signal }).catch(() => undefined);
    await eventually(() => emu.inFlight === 1);
    emu.resetPeak();
    assert.equal(emu.peakInFlight, 1);
    controller.abort();
    await hung;
    await eventually(() => emu.inFlight === 0);
  });

  test('an emulator configured from the environment (npm run emulator, npm start) keeps no request log; nor does a limit of 0', async (t) => {
    // Nothing there reads it, and kept it held up to 100,000 URLs of up to 16 KB each, requests refused for their
    // signature included: 1.6 GB anyone who reaches the emulator could fill in seconds.
    const problems: string[] = [];
    for (const options of [emulatorOptionsFromEnv({ EMULATOR_SEED: 'none' }, 0, problems), { requestLogLimit: 0 }]) {
      const emu = await emulatorFor(t, options);
      assert.equal((await api(emu, '/accounts')).status, 200);
      assert.equal((await api(emu, `/accounts?${'a'.repeat(8_000)}`, { authorization: null })).status, 401);
      assert.equal(emu.requests.length, 0);
    }
    assert.deepEqual(problems, []);
  });

  test('a status fault answers the injected error with Retry-After, then stops after `times`', async (t) => {
    const emu = await emulatorFor(t);
    emu.addFault({ path: '/accounts', status: 429, retryAfter: 2, times: 2 });
    for (let i = 0; i < 2; i++) {
      const res = await api(emu, '/accounts');
      assert.equal(res.status, 429);
      assert.equal(res.headers.get('retry-after'), '2');
      assert.equal(res.headers.get('content-type'), 'application/json');
      assert.deepEqual(res.body, { type: 'error', value: 'injected fault' });
    }
    assert.equal((await api(emu, '/accounts')).status, 200);
    assert.deepEqual(emu.requests.map((r) => r.status), [429, 429, 200]);
  });

  test('a fault of times 0 never applies; one whose expression is global matches every request it names, not every other one', async (t) => {
    const emu = await emulatorFor(t);
    emu.addFault({ path: '/accounts', status: 500, times: 0 });
    assert.equal((await api(emu, '/accounts')).status, 200);
    // A /g expression keeps its lastIndex between tests: matched from there, every second request would miss.
    emu.addFault({ path: /^\/accounts$/g, status: 503 });
    for (let i = 0; i < 3; i++) assert.equal((await api(emu, '/accounts')).status, 503, `request ${i}`);
  });

  test('faults match by method and by regular expression, and can be removed', async (t) => {
    const emu = await emulatorFor(t);
    const remove = emu.addFault({ method: 'GET', path: /^\/accounts\/[0-9a-f]{24}$/, status: 503 });
    assert.equal((await api(emu, `/accounts/${ADA}`)).status, 503);
    assert.equal((await api(emu, `/accounts/${ADA}`, { form: { first_name: 'A' } })).status, 200, 'POST is not matched');
    assert.equal((await api(emu, `/accounts/${ADA}`, { method: 'HEAD' })).status, 200, 'nor HEAD, though answered as GET is');
    assert.equal((await api(emu, '/accounts')).status, 200);
    remove();
    assert.equal((await api(emu, `/accounts/${ADA}`)).status, 200);
    // A method given in lower case matches as HTTP's methods are sent, in upper case.
    emu.addFault({ method: 'post', path: '/accounts', status: 503, times: 1 });
    assert.equal((await api(emu, '/accounts', { form: { email: 'x@example.com' } })).status, 503);
    emu.addFault({ path: '/accounts', status: 500 });
    emu.clearFaults();
    assert.equal((await api(emu, '/accounts')).status, 200);
  });

  // The faults' waits run on a timer of the test's own: each is seen asked for, with its length, and ended when
  // the test fires it. That a held request was not answered before is shown by a request without the fault,
  // sent and answered meanwhile: the held one, answered early, would be in the request log by then.

  test('latency delays the answer and counts as in flight', async (t) => {
    const { timer, waiting, fireAll } = manualTimer();
    const emu = await emulatorFor(t, { faultTimer: timer });
    emu.addFault({ path: '/accounts', latencyMs: 150 });
    const pending = Promise.all([api(emu, '/accounts'), api(emu, '/accounts'), api(emu, '/accounts')]);
    await eventually(() => waiting().length === 3);
    assert.deepEqual(waiting(), [150, 150, 150]);
    assert.equal(emu.inFlight, 3);
    assert.equal((await api(emu, `/accounts/${ADA}`)).status, 200);
    assert.deepEqual(emu.requests.map((r) => r.path), [`/accounts/${ADA}`], 'the delayed ones are still unanswered');
    fireAll();
    const results = await pending;
    assert.deepEqual(results.map((r) => r.status), [200, 200, 200]);
    assert.equal(emu.inFlight, 0);
    // The highest there was: a request arriving once fewer are in flight does not bring it down.
    await api(emu, `/accounts/${ADA}`);
    assert.equal(emu.peakInFlight, 4);
    emu.resetPeak();
    assert.equal(emu.peakInFlight, 0);
    await api(emu, `/accounts/${ADA}`);
    assert.equal(emu.peakInFlight, 1);
  });

  test('latency then status', async (t) => {
    const { timer, waiting, fireAll } = manualTimer();
    const emu = await emulatorFor(t, { faultTimer: timer });
    emu.addFault({ path: '/connect_tokens', latencyMs: 80, status: 500, times: 1 });
    const pending = api(emu, '/connect_tokens');
    await eventually(() => waiting().length === 1);
    assert.deepEqual(waiting(), [80]);
    assert.equal((await api(emu, '/accounts')).status, 200);
    assert.deepEqual(emu.requests.map((r) => r.path), ['/accounts'], 'the delayed one is still unanswered');
    fireAll();
    assert.equal((await pending).status, 500);
  });

  test('latency: a request whose client leaves during the wait is not handled, and its wait is given back', async (t) => {
    const { timer, waiting } = manualTimer();
    const emu = await emulatorFor(t, { faultTimer: timer });
    const { id } = emu.store.createAccount({ email: 'left@example.com' });
    emu.addFault({ method: 'DELETE', path: `/accounts/${id}`, latencyMs: 60_000, times: 1 });
    const controller = new AbortController();
    const pending = api(emu, `/accounts/${id}`, { method: 'DELETE', signal: controller.signal });
    await eventually(() => waiting().length === 1);
    controller.abort();
    await assert.rejects(pending, { name: 'AbortError' });
    await eventually(() => emu.inFlight === 0);
    assert.deepEqual(emu.requests.map((r) => r.status), [0]);
    assert.deepEqual(waiting(), [], 'the wait is cancelled, not left to run out');
    assert.equal((await api(emu, `/accounts/${id}`)).status, 200, 'not deleted');
  });

  test('a body fault answers its JSON with the status given', async (t) => {
    const emu = await emulatorFor(t);
    emu.addFault({ path: '/accounts', status: 202, body: { queued: true }, times: 1 });
    const res = await api(emu, '/accounts');
    assert.deepEqual([res.status, res.body], [202, { queued: true }]);
  });

  test('a 204 or 304 fault answers without a body and without a Content-Length naming one, so the connection serves on', async (t) => {
    const emu = await emulatorFor(t);
    for (const status of [204, 304]) {
      emu.addFault({ path: '/accounts', status, times: 1 });
      // Two requests on one connection: a Content-Length promising a body that never comes would hold the second.
      const socket = connect(Number(new URL(emu.origin).port), '127.0.0.1');
      const request = (close: boolean) => `GET /2.0/accounts HTTP/1.1\r\nHost: 127.0.0.1\r\n${close ? 'Connection: close\r\n' : ''}\r\n`;
      socket.write(request(false) + request(true));
      let received = '';
      socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
      await new Promise((resolve) => socket.on('close', resolve));
      const [first, second] = received.split(/(?=HTTP\/1\.1 )/);
      assert.match(first ?? '', new RegExp(`^HTTP/1\\.1 ${status} `), received);
      assert.doesNotMatch(first ?? '', /content-length/i, received);
      assert.match(second ?? '', /^HTTP\/1\.1 401 /, received);
    }
  });

  test('answerAfterMs handles a request when it arrives and holds only its answer', async (t) => {
    const { timer, waiting, fireAll } = manualTimer();
    const emu = await emulatorFor(t, { faultTimer: timer });
    emu.addFault({ method: 'POST', path: `/accounts/${ADA}`, answerAfterMs: 1500, times: 1 });
    let answered = false;
    const update = api(emu, `/accounts/${ADA}`, { form: { first_name: 'Held' } }).finally(() => (answered = true));
    // Handled on arrival: the change shows while its own answer still waits, its wait asked for as it arrived.
    await eventually(() => emu.store.getAccount(ADA)?.first_name === 'Held');
    assert.deepEqual(waiting(), [1500]);
    assert.equal(((await api(emu, `/accounts/${ADA}`)).body as { first_name?: unknown }).first_name, 'Held');
    assert.deepEqual(emu.requests.map((r) => r.method), ['GET'], 'the update is still unanswered');
    assert.equal(answered, false);
    fireAll();
    const res = await update;
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { success: true });
  });

  test('answerAfterMs: an answer ready only after its wait has ended is sent at once', async (t) => {
    const { timer, waiting, fireAll } = manualTimer();
    const emu = await emulatorFor(t, { faultTimer: timer });
    emu.addFault({ method: 'POST', path: `/accounts/${ADA}`, answerAfterMs: 1500, times: 1 });
    const { hostname, port } = new URL(emu.origin);
    const body = 'first_name=Late';
    const authorization = signRequest('POST', `${emu.url}/accounts/${ADA}`, [['first_name', 'Late']], emu.consumerKey, emu.consumerSecret);
    const socket = connect(Number(port), hostname);
    t.after(() => socket.destroy());
    socket.on('error', () => {});
    let answer = '';
    socket.on('data', (data) => (answer += data.toString('latin1')));
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    socket.write(`POST /2.0/accounts/${ADA} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nAuthorization: ${authorization}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${body.length}\r\n\r\nfirst_`);
    // The wait is asked for on arrival and ends while the body is still coming: the answer is not ready yet.
    await eventually(() => waiting().length === 1);
    fireAll();
    socket.write(body.slice('first_'.length));
    await eventually(() => /\r\n\r\n\{"success":true\}$/.test(answer), { what: 'the answer, held by nothing any more' });
    assert.match(answer, /^HTTP\/1\.1 200 /);
  });

  test('answerAfterMs holds each of concurrent requests', async (t) => {
    const { timer, waiting, fireAll } = manualTimer();
    const emu = await emulatorFor(t, { faultTimer: timer });
    emu.addFault({ path: /^\/accounts\/[0-9a-f]{24}$/, answerAfterMs: 200 });
    const pending = Promise.all(Array.from({ length: 10 }, () => api(emu, `/accounts/${ADA}`)));
    // All ten held at once, each with a wait of its own.
    await eventually(() => waiting().length === 10);
    assert.deepEqual(waiting(), Array(10).fill(200));
    assert.equal(emu.inFlight, 10);
    assert.equal((await api(emu, '/accounts')).status, 200);
    assert.deepEqual(emu.requests.map((r) => r.path), ['/accounts'], 'the held ones are still unanswered');
    fireAll();
    const results = await pending;
    assert.deepEqual(results.map((r) => r.status), Array(10).fill(200));
    assert.equal(emu.peakInFlight, 11);
  });

  // A close() kept waiting by the held answer (60 s) fails at the time limit.
  test('answerAfterMs: a client that leaves during the wait ends its request with status 0', { timeout: 30_000 }, async (t) => {
    const emu = await emulatorFor(t);
    emu.addFault({ path: '/accounts', answerAfterMs: 60_000 });
    const controller = new AbortController();
    const pending = api(emu, '/accounts', { signal: controller.signal });
    await eventually(() => emu.inFlight === 1);
    controller.abort();
    await assert.rejects(pending, { name: 'AbortError' });
    await eventually(() => emu.inFlight === 0);
    assert.equal(emu.requests[0]?.status, 0);
    await emu.close();
  });

  test('a hang never answers; the client aborting ends it with status 0', async (t) => {
    const emu = await emulatorFor(t);
    emu.addFault({ path: `/accounts/${ADA}`, hang: true, times: 1 });
    const controller = new AbortController();
    const pending = api(emu, `/accounts/${ADA}`, { signal: controller.signal });
    // In flight: the emulator has taken it in, and would have logged it by now if it logged on arrival.
    await eventually(() => emu.inFlight === 1);
    assert.equal(emu.requests.length, 0, 'logged only once it ends');
    controller.abort();
    await assert.rejects(pending, { name: 'AbortError' });
    await eventually(() => emu.inFlight === 0);
    assert.deepEqual(emu.requests, [{ method: 'GET', path: `/accounts/${ADA}`, query: '', status: 0 }]);
    assert.equal((await api(emu, `/accounts/${ADA}`)).status, 200, 'times: 1');
  });

  test('proxyPage answers the status with an HTML page, as a load balancer in front of the API would', async (t) => {
    const emu = await emulatorFor(t);
    emu.addFault({ path: '/accounts', status: 503, proxyPage: true, retryAfter: 1, times: 1 });
    const res = await api(emu, '/accounts');
    assert.equal(res.status, 503);
    assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.equal(res.headers.get('retry-after'), '1');
    assert.match(res.text, /^<html>/);
    assert.equal((await api(emu, '/accounts')).status, 200, 'times: 1');
  });

  test('drop closes the connection without an answer, before handling (nothing changes) or after (the change is made)', async (t) => {
    const emu = await emulatorFor(t);
    const { id } = emu.store.createAccount({ email: 'dropped@example.com' });
    emu.addFault({ method: 'DELETE', path: `/accounts/${id}`, drop: 'before-handling', times: 1 });
    await assert.rejects(api(emu, `/accounts/${id}`, { method: 'DELETE' }), TypeError, 'fetch fails: no answer');
    assert.notEqual(emu.store.getAccount(id), undefined, 'not deleted');
    emu.addFault({ method: 'DELETE', path: `/accounts/${id}`, drop: 'after-handling', times: 1 });
    await assert.rejects(api(emu, `/accounts/${id}`, { method: 'DELETE' }), TypeError);
    assert.equal(emu.store.getAccount(id), undefined, 'deleted, though the answer was lost');
    await eventually(() => emu.inFlight === 0);
    assert.deepEqual(emu.requests.map((r) => r.status), [0, 0]);
    assert.equal((await api(emu, `/accounts/${id}`, { method: 'DELETE' })).status, 404, 'times: 1');
  });

  test('close() ends hanging requests', async (t) => {
    const emu = await emulatorFor(t);
    emu.addFault({ path: '/accounts', hang: true });
    const outcome = api(emu, '/accounts').then(() => 'answered', () => 'connection closed');
    await eventually(() => emu.inFlight === 1);
    await emu.close();
    assert.equal(await outcome, 'connection closed');
    assert.equal(emu.inFlight, 0);
    assert.equal(emu.requests[0]?.status, 0);
  });
});
