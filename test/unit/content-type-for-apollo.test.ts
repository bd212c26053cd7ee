import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import { contentTypeForApollo } from '../../src/http/request.ts';

/** The parser Apollo Server reads a Content-Type with: its CSRF check and a GET's type look at `essence` only. */
const MIMEType = createRequire(import.meta.resolve('@apollo/server'))('whatwg-mimetype') as { parse(input: string): { essence: string } | null };

describe('contentTypeForApollo', () => {
  it('hands Apollo no run of spaces or tabs: its parser trims one in time quadratic in its length', () => {
    const header = `application/json${' \t'.repeat(7_500)};charset=utf-8`;
    assert.equal(contentTypeForApollo(header), 'application/json ;charset=utf-8');
  });

  it('leaves the media type Apollo reads as it was, or as unreadable as it was', () => {
    const headers = [
      'application/json',
      '  application/json   ;  charset=utf-8  ',
      'application/json\t;\tcharset="utf  8"',
      'text/plain    ',
      'multipart/form-data;   boundary=x',
      'application/x-www-form-urlencoded',
      'text/plain x',
      'appli cation/json',
      '   ',
      'application/json    x;a=b',
    ];
    for (const header of headers) assert.equal(MIMEType.parse(contentTypeForApollo(header))?.essence, MIMEType.parse(header)?.essence, header);
  });
});
