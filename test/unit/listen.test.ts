import assert from 'node:assert/strict';
import { createServer, type AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { describeListenFailure, listenOn, mayShareAPort } from '../../src/http/listen.ts';

const TARGET = { host: 'gateway.invalid', port: 80, hostVariable: 'HOST', portVariable: 'PORT' };
const failure = (code: string) => describeListenFailure(Object.assign(new Error(`listen ${code}`), { code }), TARGET);

describe('listening', () => {
  it('says which variable to change for each failure a setting causes, and leaves any other failure its own words', () => {
    assert.equal(failure('EADDRINUSE'), 'PORT=80: the port is already in use on gateway.invalid (choose another; 0 picks a free one)');
    assert.equal(failure('EACCES'), 'PORT=80: not allowed to listen on this port (ports below 1024 need privileges; choose another)');
    // Above 1023 no privilege is needed: the system refused it (a port it reserves, a security policy).
    const unprivileged = describeListenFailure(Object.assign(new Error('listen EACCES'), { code: 'EACCES' }), { ...TARGET, port: 4000 });
    assert.equal(unprivileged, 'PORT=4000: not allowed to listen on this port (the system forbids it: a port it reserves, or its security policy such as SELinux; choose another)');
    // Privileged are 1 to 1023 only: not 1024, nor 0 (a free port the system picks).
    const onPort = (port: number) => describeListenFailure(Object.assign(new Error('listen EACCES'), { code: 'EACCES' }), { ...TARGET, port }) ?? '';
    assert.match(onPort(1023), /ports below 1024 need privileges/);
    assert.match(onPort(1), /ports below 1024 need privileges/);
    for (const port of [0, 1024]) assert.match(onPort(port), /the system forbids it/, String(port));
    assert.equal(failure('EADDRNOTAVAIL'), 'HOST=gateway.invalid: not an address of this machine, so nothing can listen on it');
    // A name that does not resolve, or a resolver that cannot answer: the host's setting either way.
    for (const code of ['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL']) assert.equal(failure(code), 'HOST=gateway.invalid: the name does not resolve to an address', code);
    // An IPv6 link-local address without its interface (fe80::1, as `ip addr` shows it), or a multicast one.
    assert.equal(failure('EINVAL'), 'HOST=gateway.invalid: not an address a server can listen on (an IPv6 link-local address needs its interface, as in fe80::1%eth0)');
    assert.equal(failure('EMFILE'), undefined);
    assert.equal(describeListenFailure(new Error('no code'), TARGET), undefined);
  });

  it('shows the host as a configuration problem shows a value: on one line, at most 100 characters of it', () => {
    // The host is the setting as given (trimmed): a line break in it, from a `.env`, would split the line.
    const described = (host: string) => describeListenFailure(Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' }), { ...TARGET, host }) ?? '';
    assert.equal(described('bad\nhost'), 'HOST=bad\\nhost: the name does not resolve to an address');
    assert.equal(described('h'.repeat(3000)), `HOST=${'h'.repeat(100)}…: the name does not resolve to an address`);
  });

  it('takes two hosts to contend for a port when they are the same, or either is every interface (IPv4 or IPv6)', () => {
    for (const [a, b] of [['127.0.0.1', '127.0.0.1'], ['::1', '::1'], ['0.0.0.0', '127.0.0.1'], ['127.0.0.1', '0.0.0.0'], ['::', '127.0.0.1'], ['10.0.0.5', '::'], ['0.0.0.0', '::']]) {
      assert.equal(mayShareAPort(a!, b!), true, `${a} and ${b}`);
    }
    for (const [a, b] of [['127.0.0.1', '10.0.0.5'], ['127.0.0.1', '::1'], ['::1', '10.0.0.5'], ['localhost', '10.0.0.5']]) assert.equal(mayShareAPort(a!, b!), false, `${a} and ${b}`);
  });

  it('takes one address however it is written, and localhost as the loopback address it resolves to', () => {
    // EMULATOR_HOST=localhost beside the default HOST, both on one port: the emulator holds the gateway's port,
    // and "already in use" sent the operator looking for another process, when none holds it once this one exits.
    for (const [a, b] of [['localhost', '127.0.0.1'], ['127.0.0.1', 'localhost'], ['LOCALHOST', '::1'], ['::1', '0:0:0:0:0:0:0:1'], ['0:0:0:0:0:0:0:0', '10.0.0.5'], ['Devbox.lan', 'devbox.lan']]) {
      assert.equal(mayShareAPort(a!, b!), true, `${a} and ${b}`);
    }
  });

  it('rejects with the server’s own error, and once listening leaves the server’s later errors to its owner', async () => {
    const first = createServer();
    const second = createServer();
    try {
      await listenOn(first, 0, '127.0.0.1');
      // A listener of its own left behind would take every later error (a failed accept) unseen.
      assert.equal(first.listenerCount('error'), 0);
      await assert.rejects(listenOn(second, (first.address() as AddressInfo).port, '127.0.0.1'), { code: 'EADDRINUSE' });
    } finally {
      first.close();
      second.close();
    }
  });
});
