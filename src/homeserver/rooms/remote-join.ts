/**
 * Membership of rooms this server is not in, completed through a resident server —
 * server-server-api.md "Joining Rooms", "Leaving Rooms" ("rejecting invites"), "Knocking upon
 * a room": ask for a template (`make_join`, `make_leave`, `make_knock`), complete and sign it,
 * send it back (`send_join`, `send_leave`, `send_knock`). A join's answer — the room's state
 * and auth chain — goes through accept (`acceptJoinedRoom`): every event checked, the room
 * stored with its state in one write, or nothing stored at all. A leave or knock of a room
 * this server does not have is kept as an out-of-band membership so the user's /sync shows it.
 */
import {
  type IdentifiedPdu,
  identify,
  isCoreError,
  type JsonObject,
  type Pdu,
  type RoomVersion,
  roomVersions,
  signEvent,
} from '../../core/index.ts';
import type { PartialStateRoom } from '../../storage/store.ts';
import { type HomeserverContext, randomString } from '../context.ts';
import { isMatrixError, MatrixError } from '../errors.ts';
import type { EventTemplate } from '../ports.ts';
import { affectedUsers, RoomStateRefused } from './accept.ts';
import { MEMBER_TYPE } from './build.ts';
import { memberContent } from './members.ts';
import type { EventPipeline } from './pipeline.ts';

export interface RemoteMembership {
  /** Joins `userId` to `roomId` through the first of `servers` that lets it; returns the join's ID. */
  join(userId: string, roomId: string, servers: readonly string[], extra?: JsonObject): Promise<string>;
  /** Leaves (or rejects an invite to) a room this server is not in. */
  leave(userId: string, roomId: string, servers: readonly string[], extra?: JsonObject): Promise<string>;
  knock(userId: string, roomId: string, servers: readonly string[], extra?: JsonObject): Promise<string>;
}

/** Room versions this server speaks: the `ver` of make_join and make_knock. */
export const SUPPORTED_VERSIONS = Object.keys(roomVersions);

const badTemplate = (server: string, why: string) =>
  new MatrixError(502, 'M_UNKNOWN', `${server} offered a membership template that cannot be used: ${why}`);

export interface RemoteMembershipDeps {
  /** A room was joined with partial state: its full state is to be fetched (partial-state.ts). */
  partialJoined?: (room: PartialStateRoom) => void;
}

export function createRemoteMembership(
  ctx: HomeserverContext,
  pipeline: EventPipeline,
  deps: RemoteMembershipDeps = {},
): RemoteMembership {
  const { config, store } = ctx;

  /** The template completed as `userId`'s `membership`, signed by this server. */
  async function complete(
    server: string,
    template: EventTemplate,
    roomId: string,
    userId: string,
    membership: string,
    extra: JsonObject,
  ): Promise<{ version: RoomVersion; event: IdentifiedPdu; wire: Pdu }> {
    const version = roomVersions[template.roomVersion];
    if (!version) {
      throw new MatrixError(
        400,
        'M_INCOMPATIBLE_ROOM_VERSION',
        `Room ${roomId} is of version ${template.roomVersion}, which this server does not support`,
        { room_version: template.roomVersion },
      );
    }
    const event = template.event;
    const content = event.content;
    if (
      event.type !== MEMBER_TYPE ||
      event.state_key !== userId ||
      event.sender !== userId ||
      event.room_id !== roomId ||
      typeof content !== 'object' ||
      content === null ||
      Array.isArray(content) ||
      content.membership !== membership
    ) {
      throw badTemplate(server, `it is not a ${membership} of ${userId} in ${roomId}`);
    }
    const { signatures: _s, hashes: _h, unsigned: _u, event_id: _id, ...rest } = event;
    const pdu = {
      ...rest,
      // The template's content (join_authorised_via_users_server …) wins over the profile.
      content: { ...(await memberContent(store, userId, membership, extra)), ...content },
      origin: config.serverName,
      origin_server_ts: ctx.clock.now(),
      ...(version.eventIdFormat === 'server'
        ? { event_id: `$${randomString(ctx.random, 24)}:${config.serverName}` }
        : {}),
    } as unknown as Pdu;
    try {
      const wire = await signEvent(pdu, config.serverName, ctx.signingKey, version);
      return { version, event: identify(wire, version), wire };
    } catch (err) {
      if (isCoreError(err)) throw badTemplate(server, err.message);
      throw err;
    }
  }

  /** Each server in turn; the first that completes wins, else the last refusal is the answer. */
  async function throughServers<T>(
    roomId: string,
    servers: readonly string[],
    attempt: (server: string) => Promise<T>,
  ): Promise<T> {
    if (servers.length === 0) {
      throw new MatrixError(
        404,
        'M_NOT_FOUND',
        `Room ${roomId} is not known to this server, and no other server was named to reach it through`,
      );
    }
    let refusal: unknown;
    for (const server of servers) {
      try {
        return await attempt(server);
      } catch (err) {
        if (err instanceof RoomStateRefused) {
          refusal = new MatrixError(
            502,
            'M_UNKNOWN',
            `The room's state from ${server} was refused: ${err.message}`,
          );
          ctx.logger.warn('refused the room state of a join', { server, roomId, reason: err.message });
          continue;
        }
        if (!isMatrixError(err)) throw err;
        refusal = err;
      }
    }
    throw refusal;
  }

  /** A membership of a room this server does not have: kept out of band, shown by /sync. */
  async function keepOutOfBand(event: IdentifiedPdu): Promise<void> {
    await store.rooms.persistEvents([{ event, outOfBandMembership: true }]);
    ctx.notifier.notify({ rooms: [event.room_id as string], users: affectedUsers(event) });
  }

  return {
    join(userId, roomId, servers, extra = {}) {
      return throughServers(roomId, servers, async (server) => {
        const template = await ctx.federation.makeJoin(server, roomId, userId, SUPPORTED_VERSIONS);
        const { version, event, wire } = await complete(server, template, roomId, userId, 'join', extra);
        // Partial state unless turned off: the room is usable once the resident's answer,
        // members omitted, is checked; the rest comes in the background (partial-state.ts).
        const omitMembers = config.partialStateJoins !== false;
        const answer = await ctx.federation.sendJoin(server, roomId, event.event_id, wire, { omitMembers });
        // The resident first, then the others it names (send_join `servers_in_room`).
        const servers =
          omitMembers && answer.membersOmitted
            ? [...new Set([server, ...(answer.serversInRoom ?? [])].filter((s) => s !== config.serverName))]
            : undefined;
        const { eventId } = await pipeline.acceptJoinedRoom(roomId, version, {
          state: answer.state,
          authChain: answer.authChain,
          join: answer.event ?? wire,
          joinEventId: event.event_id,
          ...(servers ? { partial: { servers } } : {}),
        });
        if (servers) deps.partialJoined?.({ roomId, joinEventId: eventId, servers });
        return eventId;
      });
    },

    leave(userId, roomId, servers, extra = {}) {
      return throughServers(roomId, servers, async (server) => {
        const template = await ctx.federation.makeLeave(server, roomId, userId);
        const { event, wire } = await complete(server, template, roomId, userId, 'leave', extra);
        await ctx.federation.sendLeave(server, roomId, event.event_id, wire);
        await keepOutOfBand(event);
        return event.event_id;
      });
    },

    knock(userId, roomId, servers, extra = {}) {
      return throughServers(roomId, servers, async (server) => {
        const template = await ctx.federation.makeKnock(server, roomId, userId, SUPPORTED_VERSIONS);
        const { event, wire } = await complete(server, template, roomId, userId, 'knock', extra);
        await ctx.federation.sendKnock(server, roomId, event.event_id, wire);
        await keepOutOfBand(event);
        return event.event_id;
      });
    },
  };
}
