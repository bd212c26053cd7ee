import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { callerForLog, OPEN_IDENTITY } from '../../src/auth/access.ts';
import { createAuthenticator } from '../../src/auth/verify.ts';
import { silentLogger } from '../../src/logging/logger.ts';
import { hsToken, SECRET } from '../auth/helpers.ts';

describe('callerForLog', () => {
  it('cuts a token\'s issuer and subject to 200 characters: a signed claim may be kilobytes long, and a log line stays bounded', () => {
    const issuer = `https://${'i'.repeat(5_000)}.example.com`;
    const subject = 's'.repeat(5_000);
    const admin = callerForLog({ kind: 'admin', issuer, subject, open: false });
    const scoped = callerForLog({ kind: 'scoped', issuer, subject, accounts: new Set(), tokenDigest: undefined, caller: JSON.stringify([issuer, subject]) });
    for (const fields of [admin, scoped]) {
      assert.equal(fields.issuer, `${issuer.slice(0, 200)}…`);
      assert.equal(fields.subject, `${subject.slice(0, 200)}…`);
    }
    assert.deepEqual([admin.caller, scoped.caller], ['admin', 'scoped']);
  });

  it('names the open gateway\'s caller open, and says no issuer, subject or digest it does not have', () => {
    assert.deepEqual(callerForLog(OPEN_IDENTITY), { caller: 'open' });
    assert.deepEqual(callerForLog({ kind: 'scoped', issuer: undefined, subject: undefined, accounts: new Set(), tokenDigest: 'abc', caller: 'token abc' }), { caller: 'scoped', tokenDigest: 'abc' });
  });

  it('says no issuer for a token whose iss is empty, as for one without', async () => {
    const { authenticate } = createAuthenticator({ jwtSecret: SECRET }, silentLogger);
    const identity = await authenticate(`Bearer ${await hsToken({ iss: '', sub: 'user-1' })}`, 'r1');
    assert.deepEqual(callerForLog(identity), { caller: 'scoped', subject: 'user-1' });
  });
});
