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
import { type AdminService, createAdminService } from './admin/index.ts';
import {
  type AppserviceRegistration,
  type AppservicesService,
  createAppservicesService,
  type OutboundFetch,
} from './appservices/index.ts';
import { askServicesAboutUsers, clientRooms } from './client-rooms.ts';
import type { HomeserverConfig, HomeserverContext } from './context.ts';
import { createE2eeService, type E2eeService } from './e2ee/index.ts';
import { createEduOutbox } from './ephemeral/outgoing.ts';
import { createPresenceService, type PresenceService } from './ephemeral/presence.ts';
import { createReceiptService, type ReceiptService } from './ephemeral/receipts.ts';
import { createTypingService, type TypingService } from './ephemeral/typing.ts';
import { createExtrasService, type ExtrasService } from './extras.ts';
import { createFederationInboundService, type FederationInboundService } from './federation-inbound/index.ts';
import { createFederationQueryService, type FederationQueryService } from './federation-queries/index.ts';
import { createFilterService, type FilterService } from './filter.ts';
import { createMediaService, type MediaDeps, type MediaService } from './media/index.ts';
import { createNotificationsService, type NotificationsService } from './notifications.ts';
import type { E2eeRemote } from './ports.ts';
import { createPushDelivery, type PushDelivery } from './push/delivery.ts';
import { createPushService, type PushService } from './push/index.ts';
import { createRoomsService, type RoomsService } from './rooms/index.ts';
import { createRoomReadService, type RoomReadService } from './rooms/read.ts';
import { createRelationsService, type RelationsService } from './rooms/relations.ts';
import { createUpgradeService, type UpgradeService } from './rooms/upgrade.ts';
import { createSearchService, type SearchService } from './search.ts';
import { createSlidingSyncService, type SlidingSyncService } from './sliding-sync/index.ts';
import { createSpacesService, type SpacesService } from './spaces.ts';
import { createSyncService, type SyncService } from './sync/index.ts';
import { createTransactions, type TransactionsService } from './transactions.ts';
import { createUserDataService, type UserDataService } from './user-data.ts';

export interface Services {
  readonly config: HomeserverConfig;
  readonly accounts: AccountsService;
  readonly rooms: RoomsService;
  /** Reading rooms (state, members, events, context, /messages). */
  readonly roomRead: RoomReadService;
  /** /relations and /threads. */
  readonly relations: RelationsService;
  /** Server-side search and the user directory. */
  readonly search: SearchService;
  /** Space hierarchy, room summaries, mutual rooms. */
  readonly spaces: SpacesService;
  /** Room upgrades. */
  readonly upgrades: UpgradeService;
  /** The notifications list (GET /notifications). */
  readonly notifications: NotificationsService;
  readonly sync: SyncService;
  /** Simplified sliding sync (MSC4186). */
  readonly slidingSync: SlidingSyncService;
  readonly push: PushService;
  readonly filters: FilterService;
  /** Account data and tags. */
  readonly userData: UserDataService;
  readonly typing: TypingService;
  readonly presence: PresenceService;
  readonly receipts: ReceiptService;
  /** The content repository: uploads, downloads, thumbnails. */
  readonly media: MediaService;
  /** What other servers may ask about our users, aliases and rooms (federation queries). */
  readonly federationQueries: FederationQueryService;
  /** Keys, to-device messages, key backup, and the E2EE data of sync answers. */
  readonly e2ee: E2eeService;
  /** What other servers ask of our rooms' events, and the PDUs they send (federation-inbound/). */
  readonly federationInbound: FederationInboundService;
  /** Received federation transactions (PUT /send/{txnId}). */
  readonly transactions: TransactionsService;
  /** Application services (bridges): their auth, namespaces, transactions, queries. */
  readonly appservices: AppservicesService;
  /** The operator's admin API (Synapse's subset, the spec's lock and suspend). */
  readonly admin: AdminService;
  /** HTTP pushers' delivery to push gateways (a follower of the event stream). */
  readonly pushDelivery: PushDelivery;
  /** Content reports, TURN credentials, login tokens. */
  readonly extras: ExtrasService;
}

/** What the host supplies beside the context: media's thumbnailer and remote-media hook, and the E2EE federation hook (ports.ts); each is off when absent. */
export interface ServiceDeps extends MediaDeps {
  e2eeRemote?: E2eeRemote;
  appservices?: readonly AppserviceRegistration[];
  /** Outgoing HTTP (application services, push gateways); absent in a browser. */
  outboundFetch?: OutboundFetch;
  /** Synapse's `registration_shared_secret`. */
  sharedSecret?: string;
}

export function createServices(ctx: HomeserverContext, deps: ServiceDeps = {}): Services {
  // Rooms tell push about each new event, and push is built after rooms: rooms looks it up
  // when called, not when built.
  let push: PushService | undefined;
  const rooms = createRoomsService(ctx, { push: () => push });
  push = createPushService(ctx);
  const pushRules = (userId: string) => (push as PushService).pushRulesContent(userId);
  const userData = createUserDataService(ctx, { pushRules });
  const edus = createEduOutbox(ctx);
  // Local users' typing, public read receipts and presence also go to the rooms' other servers.
  const localTyping = createTypingService(ctx);
  const typing: TypingService = Object.assign(Object.create(localTyping) as TypingService, {
    async setTyping(roomId: string, userId: string, isTyping: boolean, timeoutMs?: number) {
      await localTyping.setTyping(roomId, userId, isTyping, timeoutMs);
      await edus.typing(roomId, userId, isTyping, timeoutMs);
      await appservices.ephemeral(roomId, {
        type: 'm.typing',
        content: { user_ids: localTyping.typingIn(roomId) },
      });
    },
  });
  const e2ee = createE2eeService(ctx, {
    remote: deps.e2eeRemote,
    // Bridges hear of their users' to-device messages, local or received over federation.
    toDeviceQueued: (messages) => appservices.toDevice(messages),
  });
  const federationInbound = createFederationInboundService(ctx, { rooms });
  const localPresence = createPresenceService(ctx);
  const presence: PresenceService = Object.assign(Object.create(localPresence) as PresenceService, {
    async set(userId: string, state: Parameters<PresenceService['set']>[1], statusMsg?: string | null) {
      await localPresence.set(userId, state, statusMsg);
      const status = localPresence.get(userId);
      if (!status) return;
      await edus.presence(userId, status);
      await appservices.presence(userId, { ...status });
    },
  });
  const appservices = createAppservicesService(ctx, {
    registrations: deps.appservices ?? [],
    ...(deps.outboundFetch ? { fetch: deps.outboundFetch } : {}),
  });
  const localReceipts = createReceiptService(ctx, {
    userData,
    visibleToUser: (userId, roomId, event) => rooms.visibleToUser(userId, roomId, event),
  });
  const receipts: ReceiptService = {
    ...localReceipts,
    async send(userId, roomId, receiptType, eventId, threadId) {
      await localReceipts.send(userId, roomId, receiptType, eventId, threadId);
      if (receiptType === 'm.read') await edus.receipt(roomId, userId, eventId, threadId);
      await appservices.ephemeral(roomId, {
        type: 'm.receipt',
        content: {
          [eventId]: {
            [receiptType]: {
              [userId]: { ts: ctx.clock.now(), ...(threadId ? { thread_id: threadId } : {}) },
            },
          },
        },
      });
    },
    async setReadMarkers(userId, roomId, markers) {
      await localReceipts.setReadMarkers(userId, roomId, markers);
      if (markers['m.read'] !== undefined) await edus.receipt(roomId, userId, markers['m.read']);
    },
  };
  const accounts = createAccountsService(ctx, {
    rooms: () => rooms,
    deviceListChanged: (userId, deleted) => e2ee.deviceListChanged(userId, deleted),
    appservices,
  });
  const admin = createAdminService(ctx, {
    accounts,
    rooms,
    ...(deps.sharedSecret ? { sharedSecret: deps.sharedSecret } : {}),
  });
  const roomRead = createRoomReadService(ctx, {
    rooms,
    backfill: (roomId, from, limit) => federationInbound.backfillRoom(roomId, from, limit),
  });
  return {
    config: ctx.config,
    accounts: askServicesAboutUsers(ctx, accounts, appservices),
    rooms: clientRooms(ctx, rooms, { admin, appservices }),
    appservices,
    admin,
    pushDelivery: createPushDelivery(ctx, {
      push,
      ...(deps.outboundFetch ? { fetch: deps.outboundFetch } : {}),
    }),
    extras: createExtrasService(ctx),
    roomRead,
    relations: createRelationsService(ctx, { rooms, roomRead }),
    search: createSearchService(ctx, { rooms, roomRead }),
    spaces: createSpacesService(ctx, { rooms }),
    upgrades: createUpgradeService(ctx, { rooms }),
    notifications: createNotificationsService(ctx),
    sync: createSyncService(ctx, { typing, presence, rooms, pushRules, e2ee }),
    slidingSync: createSlidingSyncService(ctx, { typing, presence, rooms, pushRules, e2ee }),
    e2ee,
    push,
    filters: createFilterService(ctx),
    userData,
    typing,
    presence,
    receipts,
    media: createMediaService(ctx, deps),
    federationQueries: createFederationQueryService(ctx, { rooms }),
    federationInbound,
    transactions: createTransactions(ctx, {
      rooms,
      typing,
      presence,
      e2ee,
      receivePdus: (origin, roomId, pdus) => federationInbound.receivePdus(origin, roomId, pdus),
    }),
  };
}
