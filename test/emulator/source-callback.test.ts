import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { SourceCallbacks } from '../../src/emulator/source-callback.ts';
import type { ConnectResult } from '../../src/emulator/store.ts';
import { eventually } from '../helpers/eventually.ts';
import { closeServer, listenOnLoopback } from '../helpers/net.ts';
import { startSilentServer } from './helpers.ts';

/** A loopback listener counting the POSTs it gets; `redirectTo` answers 307 there instead of 200. */
async function receiver(redirectTo?: string): Promise<{ server: Server; port: number; hits: () => number }> {
  let hits = 0;
  const server = createServer((req, res) => {
    hits += 1;
    req.resume();
    if (redirectTo) res.writeHead(307, { location: redirectTo }).end();
    else res.end('ok');
  });
  return { server, port: await listenOnLoopback(server), hits: () => hits };
}

const BODY = new URLSearchParams({ token: 't' });
const post = (callbacks: SourceCallbacks, url: string) => callbacks.post(url, BODY, AbortSignal.timeout(5_000));

describe('the emulator’s source callbacks', () => {
  let target: Awaited<ReturnType<typeof receiver>>;
  let redirecting: Awaited<ReturnType<typeof receiver>>;
  const local = new SourceCallbacks({ allowLoopback: true });
  const exposed = new SourceCallbacks({ allowLoopback: false });
  before(async () => {
    target = await receiver();
    redirecting = await receiver(`http://127.0.0.1:${target.port}/elsewhere`);
  });
  after(async () => {
    await Promise.all([local.close(), exposed.close()]);
    for (const { server } of [target, redirecting]) await closeServer(server);
  });

  test('never reach link-local (cloud metadata) or unspecified addresses, in any spelling; loopback only from an emulator answering loopback alone', () => {
    for (const address of ['169.254.169.254', '::ffff:169.254.169.254', '::ffff:a9fe:a9fe', '0:0:0:0:0:ffff:a9fe:a9fe', 'fe80::1', '0.0.0.0', '::', '0.1.2.3', 'fd00:ec2::254', '100.100.100.200', '::ffff:100.100.100.200', '::ffff:6464:64c8']) {
      assert.equal(local.allows(address), false, address);
      assert.equal(exposed.allows(address), false, address);
    }
    for (const address of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1', '::ffff:7f00:1']) {
      assert.equal(local.allows(address), true, address);
      assert.equal(exposed.allows(address), false, address);
    }
    for (const address of ['10.0.0.7', '192.168.1.20', '93.184.216.34', '2001:db8::1']) {
      assert.equal(exposed.allows(address), true, address);
    }
    assert.equal(exposed.allows('not-an-address'), false);
  });

  test('from an emulator open to other machines, refuse this machine by address or by a name resolving to it, before connecting', async () => {
    for (const host of ['127.0.0.1', '[::ffff:7f00:1]', 'localhost']) {
      await assert.rejects(post(exposed, `http://${host}:${target.port}/cb?secret=s3cr3t`), (error: Error) => {
        assert.match(error.message, new RegExp(`^source callback to .*:${target.port} (refused|failed): .*never called`));
        assert.doesNotMatch(error.message, /s3cr3t|\/cb/);
        return true;
      });
    }
    assert.equal(target.hits(), 0);
    await post(local, `http://localhost:${target.port}/cb`);
    assert.equal(target.hits(), 1);
  });

  test('do not follow a redirect: it could lead anywhere the checks would refuse', async () => {
    // Counted from here: the receivers are the suite's, and the tests before this one (or none, when it runs
    // alone) called them.
    const [redirectingHits, targetHits] = [redirecting.hits(), target.hits()];
    // Said with the host alone: the app's path and query may hold its secrets.
    await assert.rejects(post(local, `http://127.0.0.1:${redirecting.port}/cb?secret=s3cr3t`), {
      message: `source callback to 127.0.0.1:${redirecting.port} answered 307 (redirects are not followed)`,
    });
    assert.equal(redirecting.hits(), redirectingHits + 1);
    assert.equal(target.hits(), targetHits, 'the redirect’s target was not called');
  });

  test('send a URL’s user and password as Basic authentication, as an HTTP client does, never in a message', async () => {
    const seen: Array<{ url: string | undefined; authorization: string | undefined }> = [];
    const server = createServer((req, res) => {
      seen.push({ url: req.url, authorization: req.headers.authorization });
      req.resume();
      res.end('ok');
    });
    const port = await listenOnLoopback(server);
    try {
      // The gateway takes such a sourceCallbackUrl (an app's webhook behind Basic authentication); fetch refuses a
      // URL that carries credentials, and its refusal quoted the URL, password included, into the warn line.
      await post(local, `http://app:s3cr%3At@127.0.0.1:${port}/cb?x=1`);
      await post(local, `http://only-user@127.0.0.1:${port}/cb`);
      assert.deepEqual(seen, [
        { url: '/cb?x=1', authorization: `Basic ${Buffer.from('app:s3cr:t').toString('base64')}` },
        { url: '/cb', authorization: `Basic ${Buffer.from('only-user:').toString('base64')}` },
      ]);
    } finally {
      await closeServer(server);
    }
  });

  test('say a name that does not resolve as a failed call, the name and why', async () => {
    // .invalid never resolves (RFC 6761); a resolver that cannot be reached says EAI_AGAIN instead.
    await assert.rejects(post(exposed, 'http://app.invalid/cb?secret=s3cr3t'), (error: Error) => {
      assert.match(error.message, /^source callback to app\.invalid failed: getaddrinfo (ENOTFOUND|EAI_AGAIN) app\.invalid$/);
      return true;
    });
  });

  test('say a call that got no answer in time timed out, not that it was aborted', async () => {
    const silent = await startSilentServer();
    const brief = new SourceCallbacks({ allowLoopback: true, timeoutMs: 200 });
    try {
      const { port } = silent;
      await assert.rejects(post(brief, `http://127.0.0.1:${port}/cb`), { message: `source callback to 127.0.0.1:${port} failed: no answer within 0.2 s` });
    } finally {
      await brief.close();
      await silent.close();
    }
  });
  test('close() stops the calls under way, and says their failure to nobody', { timeout: 30_000 }, async () => {
    const silent = await startSilentServer();
    const { requests } = silent;
    const failures: Error[] = [];
    // A deadline past the test's time limit: only close() can end the call in time.
    const callbacks = new SourceCallbacks({ allowLoopback: true, timeoutMs: 120_000, onFailed: (error) => failures.push(error) });
    const result = {
      token: { token: 't' },
      account: { id: 'a' },
      source: { label: 'l', status: 'OK', email: 'e@example.com' },
      redirectUrl: 'http://localhost/cb',
      sourceCallbackUrl: `http://127.0.0.1:${silent.port}/cb`,
    } as unknown as ConnectResult;
    let open = true;
    try {
      callbacks.notify(result);
      await eventually(() => requests.length === 1);
      open = false;
      await callbacks.close();
      await eventually(() => requests[0]!.closed);
      assert.deepEqual(failures, []);
      // Closing again (a second shutdown path) is answered as the first was, not with undici's "destroyed".
      await callbacks.close();
    } finally {
      if (open) await callbacks.close();
      await silent.close();
    }
  });
});
