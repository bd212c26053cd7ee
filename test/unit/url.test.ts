import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hostnameOf, originAsBrowsersSendIt, urlForLog, urlHostOf } from '../../src/support/url.ts';

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

test('a URL in a log line keeps its query’s names, not their values: a query may carry a key', () => {
  assert.equal(urlForLog('https://keys.example.com/jwks.json'), 'https://keys.example.com/jwks.json');
  assert.equal(urlForLog('https://fn.example.net/api/keys?code=abc123&api-version=2'), 'https://fn.example.net/api/keys?code=…&api-version=…');
  assert.equal(urlForLog('https://x.example/k?flag&=v&a=b=c#frag'), 'https://x.example/k?flag&=…&a=…#…');
  assert.equal(urlForLog('https://x.example/k?'), 'https://x.example/k?');
  // A fragment without a query may carry a token as well (`#access_token=…`, where a redirect points).
  assert.equal(urlForLog('https://idp.example/login#access_token=abc123'), 'https://idp.example/login#…');
  assert.equal(urlForLog('https://idp.example/login#'), 'https://idp.example/login#');
  assert.equal(urlForLog('https://x.example/k#a?b=c'), 'https://x.example/k#…');
});
