import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canonicalHost, hostnameOf, isBrowserLocalScheme, isLoopbackHost, originAsBrowsersSendIt, urlForLog, urlHostOf } from '../../src/support/url.ts';

test('a server on every interface is named by a loopback address in its URLs, an IPv6 one in brackets', () => {
  assert.equal(urlHostOf('0.0.0.0'), '127.0.0.1');
  assert.equal(urlHostOf('::'), '[::1]');
  assert.equal(urlHostOf('127.0.0.1'), '127.0.0.1');
  assert.equal(urlHostOf('::1'), '[::1]');
  assert.equal(urlHostOf('localhost'), 'localhost');
  assert.equal(urlHostOf('192.168.1.20'), '192.168.1.20');
});

test('an origin spelt otherwise than browsers send it is given in their spelling; anything that is no origin is not', () => {
  assert.equal(originAsBrowsersSendIt('https://App.Example.com'), 'https://app.example.com');
  assert.equal(originAsBrowsersSendIt('HTTPS://app.example.com:443/'), 'https://app.example.com');
  assert.equal(originAsBrowsersSendIt('http://devbox.lan:80'), 'http://devbox.lan');
  for (const value of ['https://app.example.com', 'https://app.example.com/', 'https://app.example.com:8443', 'https://App.example.com/path', 'https://App.example.com/?', 'https://App.example.com#x', 'https://user:pw@App.example.com', 'https://user@App.example.com', 'https://App.example.com/.', 'https://App.example.com/%2e', 'ftp://App.example.com', '*', 'App.example.com']) {
    assert.equal(originAsBrowsersSendIt(value), undefined, value);
  }
});

test('a Host header’s name is read without its port, an empty port too, and an IPv6 address keeps its brackets', () => {
  assert.equal(hostnameOf('localhost:4000'), 'localhost');
  assert.equal(hostnameOf('localhost:'), 'localhost');
  assert.equal(hostnameOf('localhost'), 'localhost');
  assert.equal(hostnameOf('[::1]:4000'), '[::1]');
  assert.equal(hostnameOf('[::1]:'), '[::1]');
  assert.equal(hostnameOf('[::1]'), '[::1]');
});

test('loopback is localhost, 127.0.0.0/8 and ::1, with or without brackets, an IPv6 address however it is spelled', () => {
  for (const host of ['localhost', 'LocalHost', '127.0.0.1', '127.255.0.9', '::1', '[::1]', '0:0:0:0:0:0:0:1', '[0::1]', '::ffff:127.0.0.1', '[::FFFF:127.1.2.3]', '::ffff:7f00:1', '[::ffff:7fff:ffff]']) {
    assert.equal(isLoopbackHost(host), true, host);
  }
  // ::127.0.0.1 is an IPv4-compatible address, which no system routes to loopback; ::ffff:128.0.0.1 is not 127/8.
  for (const host of ['0.0.0.0', '::', '128.0.0.1', '10.0.0.1', '::2', '::127.0.0.1', '::ffff:128.0.0.1', '::ffff:8000:1', 'localhost.example', '[::1', 'evil@127.0.0.1']) {
    assert.equal(isLoopbackHost(host), false, host);
  }
});

test('a host is spelt as a URL spells it: lower case, an IPv6 address compressed, its brackets kept or not as given', () => {
  assert.equal(canonicalHost('Example.COM'), 'example.com');
  assert.equal(canonicalHost('[FD00:0:0::1]'), '[fd00::1]');
  assert.equal(canonicalHost('fd00:0:0:0:0:0:0:1'), 'fd00::1');
  assert.equal(canonicalHost('[::FFFF:127.0.0.1]'), '[::ffff:7f00:1]');
  // Nothing but an IPv6 address is parsed as one; one a URL cannot hold (with a zone) stays as written.
  for (const host of ['[fd00::1@evil.example]', '[fd00::1', 'a:b@c', '[::1]/x', '[fd00::g]', 'FE80::1%eth0']) assert.equal(canonicalHost(host), host.toLowerCase(), host);
});

test('a URL in a log line keeps its query’s names, not their values: a query may carry a key', () => {
  assert.equal(urlForLog('https://keys.example.com/jwks.json'), 'https://keys.example.com/jwks.json');
  assert.equal(urlForLog('https://fn.example.net/api/keys?code=abc123&api-version=2'), 'https://fn.example.net/api/keys?code=…&api-version=…');
  assert.equal(urlForLog('https://x.example/k?flag&=v&a=b=c#frag'), 'https://x.example/k?flag&=…&a=…#…');
  assert.equal(urlForLog('https://x.example/k?'), 'https://x.example/k?');
  // A value may hold a ? of its own (a URL to go on to): the query starts at the first.
  assert.equal(urlForLog('https://fn.example.net/api/keys?code=abc123&next=/done?x=1'), 'https://fn.example.net/api/keys?code=…&next=…');
  // A fragment without a query may carry a token as well (`#access_token=…`, where a redirect points).
  assert.equal(urlForLog('https://idp.example/login#access_token=abc123'), 'https://idp.example/login#…');
  assert.equal(urlForLog('https://idp.example/login#'), 'https://idp.example/login#');
  assert.equal(urlForLog('https://x.example/k#a?b=c'), 'https://x.example/k#…');
  // A fragment may hold a # of its own: all of it is left out, from its first.
  assert.equal(urlForLog('https://idp.example/cb#access_token=abc123#state'), 'https://idp.example/cb#…');
});

test('a URL a browser runs or opens in place is told from one it hands to a site or an app, each such scheme as URL reads it', () => {
  // Each a connect flow's callback would run script or open local content with once the mailbox is connected.
  for (const value of [
    'javascript:alert(1)', 'VBScript:MsgBox(1)', 'data:text/html,x', 'blob:https://a.example/1', 'file:///etc/passwd', 'filesystem:https://a.example/temporary/x',
    'about:blank', 'view-source:https://a.example', 'jar:https://a.example/x.jar!/y', 'mhtml:https://a.example/x.mht', 'ms-its:x.chm::/y.htm',
    'its:x.chm::/y.htm', 'mk:@MSITStore:x.chm::/y.htm', 'chrome://settings', 'resource://gre/x',
  ]) {
    assert.equal(isBrowserLocalScheme(new URL(value).protocol), true, value);
  }
  for (const value of ['https://a.example/cb', 'http://127.0.0.1:3000/cb', 'cio-api-auth://connected', 'myapp:x', 'mailto:x@a.example']) {
    assert.equal(isBrowserLocalScheme(new URL(value).protocol), false, value);
  }
});
