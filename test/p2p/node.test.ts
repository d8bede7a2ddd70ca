/**
 * The Hearth libp2p node on its own: what it refuses and what it survives.
 */
import { describe, expect, it } from 'vitest';
import { createHearthNode } from '../../src/transport/libp2p/node.ts';
import { relayTcpAddress, startTestRelay } from '../../src/transport/libp2p/testing.ts';
import { nodeTransports } from '../../src/transport/libp2p/transports-node.ts';

describe('the Hearth libp2p node', () => {
  it('starts while its relay is down (the relay is redialled later, not fatal)', async () => {
    const relay = await startTestRelay();
    const gone = relayTcpAddress(relay);
    await relay.close();
    const node = await createHearthNode({
      seed: crypto.getRandomValues(new Uint8Array(32)),
      transports: nodeTransports({ webRTC: false }),
      listen: ['/ip4/127.0.0.1/tcp/0'],
      relays: [gone],
    });
    try {
      expect(node.status).toBe('started');
      expect(node.getMultiaddrs().some((a) => a.toString().startsWith('/ip4/127.0.0.1/tcp/'))).toBe(true);
    } finally {
      await node.stop();
    }
  }, 30_000);

  it('needs a key: the homeserver seed or a private key', async () => {
    await expect(createHearthNode({ transports: nodeTransports() })).rejects.toThrow(/seed or a private key/);
  });
});
