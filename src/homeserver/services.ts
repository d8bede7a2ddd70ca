/**
 * The homeserver's services, built once per homeserver from its context. Each area
 * (accounts, rooms, sync, …) is a factory in its own file that takes the context and the
 * services it depends on; this file only wires them, in dependency order.
 */

import { type AccountsService, createAccountsService } from './accounts/index.ts';
import type { HomeserverContext } from './context.ts';
import { createEphemeralServices, type EphemeralServices } from './ephemeral/index.ts';
import { createPushService, type PushService } from './push/index.ts';
import { createRoomsService, type PushNotifier, type RoomsService } from './rooms/index.ts';
import { createSyncService, type SyncService } from './sync/index.ts';

export interface Services extends EphemeralServices {
  readonly ctx: HomeserverContext;
  readonly sync: SyncService;
  readonly rooms: RoomsService;
  readonly accounts: AccountsService;
  readonly push: PushService;
}

export function createServices(ctx: HomeserverContext): Services {
  // Filled in below in dependency order; a service that needs a later one (rooms → push)
  // looks it up here when called, not when built.
  const services: { -readonly [K in keyof Services]?: Services[K] } = { ctx };
  services.rooms = createRoomsService(ctx, { push: () => (services as { push?: PushNotifier }).push });
  services.accounts = createAccountsService(ctx, { rooms: () => services.rooms });
  services.push = createPushService(ctx);
  Object.assign(
    services,
    createEphemeralServices(ctx, {
      rooms: services.rooms,
      pushRules: (userId) => (services.push as PushService).pushRulesContent(userId),
    }),
  );
  const ready = services as Services;
  services.sync = createSyncService(ctx, {
    filters: ready.filters,
    typing: ready.typing,
    presence: ready.presence,
    rooms: ready.rooms,
    pushRules: (userId) => ready.push.pushRulesContent(userId),
  });
  return services as Services;
}
