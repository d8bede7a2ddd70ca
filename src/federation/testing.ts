/**
 * Test support for federation: several homeservers in one process on an in-memory network,
 * sharing one settable clock, each with its federation pieces (`createFederation`) at hand.
 */
import type { Clock, HomeserverContext, Logger } from '../homeserver/context.ts';
import type { FederationPort } from '../homeserver/ports.ts';
import type { Services } from '../homeserver/services.ts';
import type { HomeserverOptions } from '../server.ts';
import { createTestHomeserver, type TestHomeserver } from '../testing.ts';
import { createMemoryNetwork, type MemoryNetwork } from '../transport/memory.ts';
import type { InboundHandler } from '../transport/transport.ts';
import { createFederation, type Federation } from './index.ts';
import type { NotaryConfig } from './server-keys.ts';

export interface SettableClock extends Clock {
  set(ms: number): void;
  advance(ms: number): void;
}

export function settableClock(start = Date.UTC(2026, 0, 1)): SettableClock {
  let now = start;
  return {
    now: () => now,
    set(ms) {
      now = ms;
    },
    advance(ms) {
      now += ms;
    },
  };
}

export interface FederatedServer {
  hs: TestHomeserver;
  services: Services & { ctx: HomeserverContext };
  /** A second set of this server's federation pieces (same store, transport and key) for tests to drive. */
  federation: Federation;
}

export interface FederatedNetwork {
  network: MemoryNetwork;
  clock: SettableClock;
  servers: Record<string, FederatedServer>;
  close(): Promise<void>;
}

/** Homeservers named `names` on one memory network; each asks `notaries` for keys it cannot fetch. */
export async function createFederatedServers(
  names: readonly string[],
  options: {
    notaries?: readonly NotaryConfig[];
    clock?: SettableClock;
    /** Each server's logger (default silent). */
    logger?: (name: string) => Logger;
    /** The homeserver's `FederationPort`, given its federation pieces (built just after it). */
    federationPort?: (name: string, federation: () => Federation) => FederationPort;
    /** More options for every homeserver (a thumbnailer, limits). */
    homeserver?: Partial<HomeserverOptions>;
    /** More options for one homeserver, over `homeserver`'s. */
    homeserverFor?: (name: string) => Partial<HomeserverOptions>;
    /** Stands in front of each server's inbound handler (a test recording the wire). */
    inbound?: (name: string, handler: InboundHandler) => InboundHandler;
  } = {},
): Promise<FederatedNetwork> {
  const network = createMemoryNetwork();
  const clock = options.clock ?? settableClock();
  const servers: Record<string, FederatedServer> = {};
  for (const name of names) {
    const federationOptions = { transport: network.transport(name), notaries: options.notaries };
    let federation: Federation | undefined;
    const federationPort = options.federationPort?.(name, () => {
      if (!federation) throw new Error(`the federation of ${name} is not built yet`);
      return federation;
    });
    const hs = await createTestHomeserver({
      ...options.homeserver,
      ...options.homeserverFor?.(name),
      serverName: name,
      clock,
      federation: federationOptions,
      ...(options.logger ? { logger: options.logger(name) } : {}),
      ...(federationPort ? { federationPort } : {}),
    });
    const handler: InboundHandler = (request, info) => hs.fetch(request, info);
    network.serve(name, options.inbound ? options.inbound(name, handler) : handler);
    const services = hs.internals;
    federation = createFederation(services.ctx, federationOptions);
    servers[name] = { hs, services, federation };
  }
  return {
    network,
    clock,
    servers,
    async close() {
      await Promise.all(Object.values(servers).map((s) => s.hs.close()));
    },
  };
}
