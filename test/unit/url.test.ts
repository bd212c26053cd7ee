import assert from 'node:assert/strict';
import { test } from 'node:test';
import { originAsBrowsersSendIt, urlHostOf } from '../../src/url.ts';

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
  for (const value of ['https://app.example.com', 'https://app.example.com/', 'https://app.example.com:8443', 'https://App.example.com/path', 'https://App.example.com/?', 'https://App.example.com#x', 'https://user:pw@App.example.com', 'ftp://App.example.com', '*', 'App.example.com']) {
    assert.equal(originAsBrowsersSendIt(value), undefined, value);
  }
});
