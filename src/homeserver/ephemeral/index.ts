/**
 * The per-user and ephemeral services, built together: filters, account data and tags,
 * typing, presence, receipts and read markers, and the read side of rooms. One factory so
 * services.ts wires the whole area in one line, after the rooms service it reads through.
 */
import type { HomeserverContext } from '../context.ts';
import { createFilterService, type FilterService } from '../filter.ts';
import { createRoomReadService, type RoomReadService } from '../room-read.ts';
import type { RoomsService } from '../rooms/index.ts';
import { createUserDataService, type UserDataDeps, type UserDataService } from '../user-data.ts';
import { createPresenceService, type PresenceService } from './presence.ts';
import { createReceiptService, type ReceiptService } from './receipts.ts';
import { createTypingService, type TypingService } from './typing.ts';

export interface EphemeralServices {
  readonly filters: FilterService;
  readonly userData: UserDataService;
  readonly typing: TypingService;
  readonly presence: PresenceService;
  readonly receipts: ReceiptService;
  /** Reading rooms (state, members, events, context, /messages); needs the rooms service. */
  readonly roomRead: RoomReadService;
}

export function createEphemeralServices(
  ctx: HomeserverContext,
  deps: { rooms: RoomsService; pushRules?: UserDataDeps['pushRules'] },
): EphemeralServices {
  const userData = createUserDataService(ctx, deps.pushRules ? { pushRules: deps.pushRules } : {});
  const { rooms } = deps;
  return {
    filters: createFilterService(ctx),
    userData,
    typing: createTypingService(ctx),
    presence: createPresenceService(ctx),
    receipts: createReceiptService(ctx, {
      userData,
      visibleToUser: (userId, roomId, event) => rooms.visibleToUser(userId, roomId, event),
    }),
    roomRead: createRoomReadService(ctx, { rooms }),
  };
}

export type {
  FilterService,
  PresenceService,
  ReceiptService,
  RoomReadService,
  TypingService,
  UserDataService,
};
