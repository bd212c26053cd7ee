import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { connectTokenForm } from '../../src/resolvers/inputs.ts';
import { requestTarget } from '../../src/upstream/request.ts';

/**
 * What a connect token's creation sends, pair by pair: every field of `CreateConnectTokenInput` under the name
 * the upstream documents for `POST /connect_tokens` (contextio-2.0.md, "Connect tokens"), flags as 0/1, and a
 * field left out not sent at all. The emulator keeps what it is sent without showing it back, so it is checked
 * here, on the pairs that are signed and sent.
 */
describe('the connect token form', () => {
  it('sends each input under the documented parameter name, flags as 0/1', () => {
    const form = connectTokenForm({
      callbackUrl: 'https://app.example.com/cb',
      email: 'who@example.com',
      firstName: 'Who',
      lastName: 'Ever',
      sourceCallbackUrl: 'https://app.example.com/synced',
      sourceSyncAllFolders: true,
      sourceSyncFlags: false,
      sourceRawFileList: true,
    });
    assert.deepEqual(new Map(requestTarget('/2.0', ['connect_tokens'], undefined, form).form), new Map([
      ['callback_url', 'https://app.example.com/cb'],
      ['email', 'who@example.com'],
      ['first_name', 'Who'],
      ['last_name', 'Ever'],
      ['source_callback_url', 'https://app.example.com/synced'],
      ['source_sync_all_folders', '1'],
      ['source_sync_flags', '0'],
      ['source_raw_file_list', '1'],
    ]));
  });

  it('sends only callback_url when nothing else is given', () => {
    const form = connectTokenForm({ callbackUrl: 'https://app.example.com/cb', email: null, sourceSyncFlags: null });
    assert.deepEqual(requestTarget('/2.0', ['connect_tokens'], undefined, form).form, [['callback_url', 'https://app.example.com/cb']]);
  });
});
