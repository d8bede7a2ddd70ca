/** Rooms: the event pipeline, creation, membership, aliases, directory, visibility. */
export type { AcceptOutcome } from './accept.ts';
export type { CreateRoomRequest, InitialStateEvent, Preset } from './create-room.ts';
export type { Directory, PublicRoomsChunk, PublicRoomsQuery, PublicRoomsResponse } from './directory.ts';
export type { Membership, MembershipOptions } from './membership.ts';
export type { PushNotifier, RoomsDeps, SendEventInput, SendEventResult } from './pipeline.ts';
export { createRoomsService, type RoomsService } from './service.ts';
