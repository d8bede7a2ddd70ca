/**
 * The carried Server-Server schema table and its checker: real answers of this homeserver fit
 * the spec's schemas, and a body that breaks them is caught — so a wire-format test built on
 * it can fail.
 */
import { describe, expect, it } from 'vitest';
import { createWireChecker, readSchemaTable } from '../../scripts/spec-schemas.ts';
import { parseJson } from '../../src/core/json.ts';
import { createTestHomeserver } from '../../src/testing.ts';

describe('the Server-Server schema table', () => {
  const table = readSchemaTable();
  const check = createWireChecker(table);

  it('holds the federation operations with their schemas', () => {
    expect(table.operations.length).toBeGreaterThan(30);
    const send = table.operations.find((o) => o.path === '/_matrix/federation/v1/send/{txnId}');
    expect(send?.request).toBeDefined();
    expect(send?.responses['200']).toBeDefined();
  });

  it('accepts what this homeserver answers, and refuses a body that breaks the schema', async () => {
    const hs = await createTestHomeserver({ serverName: 'wire.test' });
    try {
      const res = await hs.fetch(new Request('http://wire.test/_matrix/key/v2/server'));
      const keys = parseJson(await res.text());
      expect(check('GET', '/_matrix/key/v2/server', '200', keys)).toEqual([]);
      const version = parseJson(
        await (await hs.fetch(new Request('http://wire.test/_matrix/federation/v1/version'))).text(),
      );
      expect(check('GET', '/_matrix/federation/v1/version', '200', version)).toEqual([]);
      expect(
        check('GET', '/_matrix/key/v2/server', '200', { ...(keys as object), verify_keys: 'nope' }),
      ).not.toEqual([]);
      expect(check('PUT', '/_matrix/federation/v1/send/{txnId}', 'request', { origin: 1 })).not.toEqual([]);
    } finally {
      await hs.close();
    }
  });
});
