import { describe, expect, it } from 'vitest';
import { createRoutingTransport } from './routing.ts';
import type { FederationTransport } from './transport.ts';

function recording(name: string, log: string[], withHold: boolean): FederationTransport {
  return {
    send: async (destination) => {
      log.push(`${name} send ${destination}`);
      return new Response('{}');
    },
    ...(withHold
      ? {
          hold: async (destination: string) => {
            log.push(`${name} hold ${destination}`);
            return true;
          },
        }
      : {}),
  };
}

describe('routing by server name', () => {
  it('sends P2P names over libp2p and every other name over HTTPS; only P2P names are held', async () => {
    const log: string[] = [];
    const transport = createRoutingTransport({
      p2p: recording('p2p', log, true),
      dns: recording('https', log, false),
    });
    const hex = 'ab'.repeat(32);
    const request = () => new Request('https://x/_matrix/federation/v1/version');
    await transport.send(hex, request());
    await transport.send('example.org', request());
    await transport.send(`${'ab'.repeat(31)}:8448`, request());
    expect(await transport.hold?.(hex, [])).toBe(true);
    expect(await transport.hold?.('example.org', [])).toBe(false);
    expect(log).toEqual([
      `p2p send ${hex}`,
      'https send example.org',
      `https send ${'ab'.repeat(31)}:8448`,
      `p2p hold ${hex}`,
    ]);
  });
});
