/**
 * Room membership — client-server-api "Room membership" (joining.yaml, inviting.yaml,
 * leaving.yaml, kicking.yaml, banning.yaml, knocking.yaml): every change is an
 * `m.room.member` event sent through the pipeline, so the authorization rules of the room
 * version decide who may do what (a rejection is 403 M_FORBIDDEN with the rule's reason).
 * What the rules cannot express — e.g. "kick someone who is in the room" — is checked here.
 *
 * Rooms this server does not have are reached through `ctx.federation` (the
 * `FederationPort`): a join, knock or leave asks a server named by the room ID, the alias or
 * the client's `via` hints; an invite of a remote user asks the invitee's server. With
 * federation off those answer 404 M_NOT_FOUND (403 M_FORBIDDEN for an invite), saying so.
 * The handshakes themselves (make_*, send_*) are remote-join.ts's.
 */

import {
  isValidRoomAlias,
  isValidRoomId,
  isValidServerName,
  isValidUserId,
  type JsonObject,
  type RoomVersion,
  serverNameOf,
} from '../../core/index.ts';
import { type HomeserverContext, isLocalId } from '../context.ts';
import { forbidden, guestAccessForbidden, invalidParam, matrixError, notFound } from '../errors.ts';
import { serverOf } from './accept.ts';
import { MEMBER_TYPE } from './build.ts';
import { memberContent } from './members.ts';
import type { EventPipeline, SendEventResult } from './pipeline.ts';
import { createRemoteMembership, type RemoteMembershipDeps } from './remote-join.ts';
import { restrictedJoin } from './restricted.ts';

export interface MembershipOptions {
  reason?: string;
  /** Guests may only join rooms whose `m.room.guest_access` is `can_join`. */
  isGuest?: boolean;
  /** Servers to reach a room of another server through (`via`, `server_name`). */
  servers?: readonly string[];
}

export interface Membership {
  /** Joins a room by ID or alias; returns the room ID. */
  join(userId: string, roomIdOrAlias: string, options?: MembershipOptions): Promise<string>;
  /** Knocks on a room by ID or alias (room versions with the knock join rule); returns the room ID. */
  knock(userId: string, roomIdOrAlias: string, options?: MembershipOptions): Promise<string>;
  invite(
    sender: string,
    roomId: string,
    target: string,
    options?: MembershipOptions & { isDirect?: boolean },
  ): Promise<SendEventResult>;
  /** Leaves, rejects an invite or withdraws a knock. Leaving twice is not an error. */
  leave(userId: string, roomId: string, options?: MembershipOptions): Promise<SendEventResult>;
  /** Hides a room the user has left from their room lists (forget; leaving.yaml). */
  forget(userId: string, roomId: string): Promise<void>;
  kick(sender: string, roomId: string, target: string, options?: MembershipOptions): Promise<SendEventResult>;
  ban(sender: string, roomId: string, target: string, options?: MembershipOptions): Promise<SendEventResult>;
  unban(
    sender: string,
    roomId: string,
    target: string,
    options?: MembershipOptions,
  ): Promise<SendEventResult>;
  /**
   * Sends `m.room.member` for `target` with `membership`, the target's profile for
   * join/invite/knock, and `extra` content (reason, is_direct …). The generic form the others use.
   */
  setMembership(
    sender: string,
    roomId: string,
    target: string,
    membership: string,
    extra?: JsonObject,
  ): Promise<SendEventResult>;
  /** A room ID, or a local alias resolved to one (404 M_NOT_FOUND when unknown). */
  resolveRoom(roomIdOrAlias: string): Promise<string>;
}

export function createMembership(
  ctx: HomeserverContext,
  pipeline: EventPipeline,
  deps: RemoteMembershipDeps = {},
): Membership {
  const { store, config } = ctx;
  const remote = createRemoteMembership(ctx, pipeline, deps);

  const isLocal = (id: string): boolean => isLocalId(config, id);

  /** The room and the servers that may have it: the alias's own answer first, then the hints. */
  async function locateRoom(
    roomIdOrAlias: string,
    hints: readonly string[] = [],
  ): Promise<{ roomId: string; servers: string[] }> {
    if (roomIdOrAlias.startsWith('#')) {
      if (!isValidRoomAlias(roomIdOrAlias))
        throw invalidParam(`${JSON.stringify(roomIdOrAlias)} is not a valid room alias`);
      const alias = await store.rooms.getAlias(roomIdOrAlias);
      if (alias) return { roomId: alias.roomId, servers: remoteServers(alias.servers, hints) };
      if (isLocal(roomIdOrAlias)) throw notFound(`Room alias ${roomIdOrAlias} not found`);
      const aliasServer = serverNameOf(roomIdOrAlias) as string;
      const found = await ctx.federation.queryDirectory(aliasServer, roomIdOrAlias);
      const creator = serverOf(found.roomId);
      return {
        roomId: found.roomId,
        servers: remoteServers(found.servers, [aliasServer], hints, creator ? [creator] : []),
      };
    }
    if (!isValidRoomId(roomIdOrAlias)) {
      throw invalidParam(`${JSON.stringify(roomIdOrAlias)} is neither a room ID (!…) nor a room alias (#…)`);
    }
    // v1–v11 room IDs name the server that made the room; v12 IDs name none (rooms/v12.md).
    const creator = serverNameOf(roomIdOrAlias);
    return { roomId: roomIdOrAlias, servers: remoteServers(hints, creator ? [creator] : []) };
  }

  /**
   * Other servers among `lists`, in order, each once. Hints come from the client's query
   * string: only valid server names are passed on to the federation port.
   */
  function remoteServers(...lists: (readonly string[])[]): string[] {
    return [...new Set(lists.flat())].filter(
      (server) => server !== config.serverName && isValidServerName(server),
    );
  }

  async function resolveRoom(roomIdOrAlias: string): Promise<string> {
    return (await locateRoom(roomIdOrAlias)).roomId;
  }

  async function knownRoom(roomId: string): Promise<RoomVersion> {
    const version = await pipeline.roomVersionOf(roomId);
    if (!version) throw notFound(`Room ${roomId} is not known to this server`);
    return version;
  }

  /**
   * Whether this server is in the room: some local user is joined. A room it was in once but
   * left is known (its events stay) but joining again goes through a resident server.
   */
  async function residentIn(roomId: string): Promise<boolean> {
    return (await store.rooms.members(roomId, 'join')).some((m) => isLocal(m.userId));
  }

  /** The server that sent `userId` the membership it holds (an invite), when it is remote. */
  async function senderServerOf(roomId: string, userId: string): Promise<string[]> {
    const row = await store.rooms.membership(roomId, userId);
    const held = row ? (await store.rooms.getEvent(row.eventId))?.event.sender : undefined;
    const server = serverOf(held);
    return server ? [server] : [];
  }

  /** Servers with joined members of a room this server knows (for a rejoin). */
  async function knownServers(roomId: string): Promise<string[]> {
    return (await store.rooms.members(roomId, 'join')).flatMap((m) => {
      const server = serverOf(m.userId);
      return server ? [server] : [];
    });
  }

  function checkTarget(target: string): void {
    if (!isValidUserId(target, { historical: true }))
      throw invalidParam(`${JSON.stringify(target)} is not a valid user ID`);
  }

  const withReason = (options: MembershipOptions | undefined, extra: JsonObject = {}): JsonObject =>
    options?.reason !== undefined ? { ...extra, reason: options.reason } : extra;

  async function setMembership(
    sender: string,
    roomId: string,
    target: string,
    membership: string,
    extra: JsonObject = {},
  ): Promise<SendEventResult> {
    const content = await memberContent(store, target, membership, extra);
    return pipeline.sendEvent({ sender, roomId, type: MEMBER_TYPE, stateKey: target, content });
  }

  const currentMembership = async (roomId: string, userId: string) =>
    (await store.rooms.membership(roomId, userId))?.membership ?? null;

  return {
    resolveRoom,
    setMembership,

    async join(userId, roomIdOrAlias, options) {
      const { roomId, servers } = await locateRoom(roomIdOrAlias, options?.servers);
      const version = await pipeline.roomVersionOf(roomId);
      if (!version || !(await residentIn(roomId))) {
        const through = remoteServers(
          await senderServerOf(roomId, userId),
          servers,
          version ? await knownServers(roomId) : [],
        );
        // A room this server has that nobody anywhere else is in: join it here, as before.
        if (!version || through.length > 0) {
          await remote.join(userId, roomId, through, withReason(options));
          return roomId;
        }
      }
      const current = await currentMembership(roomId, userId);
      if (options?.isGuest && current !== 'join') {
        const access = (await store.rooms.currentStateEvent(roomId, 'm.room.guest_access', ''))?.event
          .content;
        if (access?.guest_access !== 'can_join') throw guestAccessForbidden('Guests may not join this room');
      }
      const extra = withReason(options);
      const restricted = await restrictedJoin(ctx, pipeline, roomId, userId, version);
      if (restricted.kind === 'authorised') extra.join_authorised_via_users_server = restricted.by;
      await setMembership(userId, roomId, userId, 'join', extra);
      return roomId;
    },

    async knock(userId, roomIdOrAlias, options) {
      const { roomId, servers } = await locateRoom(roomIdOrAlias, options?.servers);
      const version = await pipeline.roomVersionOf(roomId);
      if (!version || !(await residentIn(roomId))) {
        const through = remoteServers(servers, version ? await knownServers(roomId) : []);
        if (!version || through.length > 0) {
          await remote.knock(userId, roomId, through, withReason(options));
          return roomId;
        }
      }
      if (!version.knockJoinRule) throw forbidden(`Room version ${version.id} does not allow knocking`);
      await setMembership(userId, roomId, userId, 'knock', withReason(options));
      return roomId;
    },

    async invite(sender, roomId, target, options) {
      checkTarget(target);
      await knownRoom(roomId);
      const extra = withReason(options, options?.isDirect ? { is_direct: true } : {});
      if (!isLocal(target)) {
        const content = await memberContent(store, target, 'invite', extra);
        return pipeline.inviteRemote(sender, roomId, target, content);
      }
      if (!(await store.accounts.getUser(target))) throw notFound(`Unknown user ${target}`);
      return setMembership(sender, roomId, target, 'invite', extra);
    },

    async leave(userId, roomId, options) {
      const row = await store.rooms.membership(roomId, userId);
      if (!(await pipeline.roomVersionOf(roomId))) {
        // A room known only by an invite or knock, or not at all: its servers decide.
        const held = row ? (await store.rooms.getEvent(row.eventId))?.event.sender : undefined;
        const servers = remoteServers(
          options?.servers ?? [],
          [serverOf(held), serverOf(roomId)].filter((server): server is string => server !== undefined),
        );
        return { eventId: await remote.leave(userId, roomId, servers, withReason(options)) };
      }
      if (!row) throw forbidden(`You are not in room ${roomId}`);
      // Already gone: leaving again changes nothing (clients leave before they forget).
      if (row.membership === 'leave') return { eventId: row.eventId };
      return setMembership(userId, roomId, userId, 'leave', withReason(options));
    },

    async forget(userId, roomId) {
      const membership = await currentMembership(roomId, userId);
      if (membership === 'join') {
        throw matrixError(400, 'M_UNKNOWN', 'You must leave the room before you can forget it');
      }
      if (membership === null) return;
      await store.rooms.forgetRoom(roomId, userId);
    },

    async kick(sender, roomId, target, options) {
      checkTarget(target);
      await knownRoom(roomId);
      const membership = await currentMembership(roomId, target);
      if (membership !== 'join' && membership !== 'invite' && membership !== 'knock') {
        throw forbidden(`${target} is not in room ${roomId}`);
      }
      return setMembership(sender, roomId, target, 'leave', withReason(options));
    },

    async ban(sender, roomId, target, options) {
      checkTarget(target);
      await knownRoom(roomId);
      return setMembership(sender, roomId, target, 'ban', withReason(options));
    },

    async unban(sender, roomId, target, options) {
      checkTarget(target);
      await knownRoom(roomId);
      if ((await currentMembership(roomId, target)) !== 'ban')
        throw forbidden(`${target} is not banned from room ${roomId}`);
      return setMembership(sender, roomId, target, 'leave', withReason(options));
    },
  };
}
