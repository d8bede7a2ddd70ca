/**
 * The homeserver's services, built once per homeserver from its context. Each area
 * (accounts, rooms, sync, …) is a factory in its own file that takes the context and the
 * services it depends on; this file only wires them, in dependency order.
 *
 * `Services` is what the API layer is given: behaviour, and the configuration endpoints
 * describe (`/versions`, `/capabilities`, login flows). The store is not in it: handlers and
 * hosts reach durable state only through a service.
 */

import { type AccountsService, createAccountsService } from './accounts/index.ts';
import type { HomeserverConfig, HomeserverContext } from './context.ts';
import { createPresenceService, type PresenceService } from './ephemeral/presence.ts';
import { createReceiptService, type ReceiptService } from './ephemeral/receipts.ts';
import { createTypingService, type TypingService } from './ephemeral/typing.ts';
import { createFederationInboundService, type FederationInboundService } from './federation-inbound/index.ts';
import { createFilterService, type FilterService } from './filter.ts';
import { createPushService, type PushService } from './push/index.ts';
import { createRoomsService, type RoomsService } from './rooms/index.ts';
import { createRoomReadService, type RoomReadService } from './rooms/read.ts';
import { createSyncService, type SyncService } from './sync/index.ts';
import { createUserDataService, type UserDataService } from './user-data.ts';

export interface Services {
  readonly config: HomeserverConfig;
  readonly accounts: AccountsService;
  readonly rooms: RoomsService;
  /** Reading rooms (state, members, events, context, /messages). */
  readonly roomRead: RoomReadService;
  readonly sync: SyncService;
  readonly push: PushService;
  readonly filters: FilterService;
  /** Account data and tags. */
  readonly userData: UserDataService;
  readonly typing: TypingService;
  readonly presence: PresenceService;
  readonly receipts: ReceiptService;
  /** What other servers ask of our rooms' events, and the PDUs they send (federation-inbound/). */
  readonly federationInbound: FederationInboundService;
}

export function createServices(ctx: HomeserverContext): Services {
  // Rooms tell push about each new event, and push is built after rooms: rooms looks it up
  // when called, not when built.
  let push: PushService | undefined;
  const rooms = createRoomsService(ctx, { push: () => push });
  push = createPushService(ctx);
  const pushRules = (userId: string) => (push as PushService).pushRulesContent(userId);
  const userData = createUserDataService(ctx, { pushRules });
  const typing = createTypingService(ctx);
  const presence = createPresenceService(ctx);
  const federationInbound = createFederationInboundService(ctx, { rooms });
  return {
    config: ctx.config,
    accounts: createAccountsService(ctx, { rooms: () => rooms }),
    rooms,
    roomRead: createRoomReadService(ctx, {
      rooms,
      backfill: (roomId, from, limit) => federationInbound.backfillRoom(roomId, from, limit),
    }),
    sync: createSyncService(ctx, { typing, presence, rooms, pushRules }),
    push,
    filters: createFilterService(ctx),
    userData,
    typing,
    presence,
    receipts: createReceiptService(ctx, {
      userData,
      visibleToUser: (userId, roomId, event) => rooms.visibleToUser(userId, roomId, event),
    }),
    federationInbound,
  };
}
