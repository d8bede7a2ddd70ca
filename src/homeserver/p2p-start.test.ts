import { describe, expect, it } from 'vitest';
import { isP2pServerName } from '../core/p2p-identity.ts';
import { openP2pIdentity, startServices } from './start.ts';
import { openTestStore } from './testing.ts';

describe('a homeserver in P2P mode', () => {
  it('is named by its stored seed, signs with ed25519:p2p, and keeps the name across starts', async () => {
    const store = await openTestStore();
    const first = await openP2pIdentity(store);
    expect(isP2pServerName(first.serverName)).toBe(true);
    expect(await openP2pIdentity(store)).toEqual(first);
    const { ctx } = await startServices(store, { serverName: first.serverName, p2p: true });
    expect(ctx.signingKey.keyId).toBe('ed25519:p2p');
    expect(ctx.config.serverName).toBe(first.serverName);
  });

  it('refuses to start under a name that is not its key', async () => {
    const store = await openTestStore();
    await openP2pIdentity(store);
    await expect(startServices(store, { serverName: 'ab'.repeat(32), p2p: true })).rejects.toThrow(
      /not the hex/,
    );
  });
});
