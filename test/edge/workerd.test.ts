/**
 * The Cloudflare Workers host in workerd (miniflare from npm: no account, no network): the
 * Worker and its Durable Object, bundled now into a temporary folder, storing in the object's
 * own SQLite. matrix-js-sdk's two-user scenario runs against it over loopback HTTP; then
 * workerd is stopped and started again on the same Durable Object storage, and everything is
 * still there. The signing seed comes from the HEARTH_SIGNING_SEED secret.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleWorkerd, type EdgeBundle } from '../../scripts/edge-build.ts';
import { encodeBase64 } from '../../src/core/base64.ts';
import { signingKeyFromSeed } from '../../src/core/crypto.ts';
import { checkAfterRestart, runScenario } from '../e2e/js-sdk-scenario.ts';
import { startWorkerd } from './processes.ts';

const root = mkdtempSync(join(tmpdir(), 'hearth-workerd-'));
let bundle: EdgeBundle;
const seed = new Uint8Array(32).map((_, i) => i * 7 + 1);

beforeAll(async () => {
  bundle = await bundleWorkerd(join(root, 'bundle'));
}, 120_000);
afterAll(() => rmSync(root, { recursive: true, force: true }));

const startHost = (bindings: Record<string, string>) =>
  startWorkerd(bundle.file, join(root, 'durable-objects'), {
    HEARTH_SERVER_NAME: 'workerd.test',
    HEARTH_REGISTRATION: 'open',
    ...bindings,
  });

describe('Hearth on Cloudflare Workers (workerd through miniflare)', () => {
  it('bundles without Node or libp2p modules', () => {
    expect(bundle.modules).toContain('src/hosts/workers.ts');
    expect(bundle.modules).toContain('src/storage/sqlite/durable-object.ts');
    expect(bundle.modules.some((m) => /libp2p|^node:/.test(m))).toBe(false);
  });

  it('runs the matrix-js-sdk scenario, and after a restart on the same storage everything is there', async () => {
    const secret = { HEARTH_SIGNING_SEED: encodeBase64(seed) };
    const first = await startHost(secret);
    let result: Awaited<ReturnType<typeof runScenario>>;
    try {
      result = await runScenario({ baseUrl: first.url }, 'w');
    } finally {
      await first.stop();
    }
    const second = await startHost(secret);
    try {
      await checkAfterRestart({ baseUrl: second.url }, result);
      // The key is the one of the secret's seed.
      const key = (await (await fetch(`${second.url}/_matrix/key/v2/server`)).json()) as {
        verify_keys: Record<string, { key: string }>;
      };
      const expected = await signingKeyFromSeed(seed, 'x');
      expect(Object.values(key.verify_keys).map((k) => k.key)).toEqual([encodeBase64(expected.publicKey)]);
    } finally {
      await second.stop();
    }
    // Another seed for the same storage is refused, not silently ignored.
    const other = await startHost({ HEARTH_SIGNING_SEED: encodeBase64(new Uint8Array(32).fill(9)) });
    try {
      const response = await fetch(`${other.url}/_matrix/client/versions`);
      expect(response.status).toBe(503);
      expect(((await response.json()) as { errcode: string }).errcode).toBe('M_UNKNOWN');
    } finally {
      await other.stop();
    }
  }, 300_000);
});
