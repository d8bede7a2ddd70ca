/**
 * This server as the resident of a room another server's user joins, leaves or knocks on, or
 * as the invitee's server — server-server-api.md "Joining Rooms" (make_join, send_join),
 * "Leaving Rooms" (make_leave, send_leave), "Knocking upon a room" (make_knock, send_knock),
 * "Inviting to a room" (invite v2) and "Server Access Control Lists (ACLs)". Every event the
 * other server sends back goes through accept (`acceptRemote`) like any received event.
 */
import {
  authTypesForEvent,
  checkAuth,
  cosignEvent,
  type IdentifiedPdu,
  identify,
  isCoreError,
  isValidUserId,
  type JsonObject,
  type Pdu,
  type RoomVersion,
  referencedIds,
  roomIdOf,
  roomVersions,
  stateKey,
  toWirePdu,
  validatePdu,
  verifyEvent,
} from '../../core/index.ts';
import { type HomeserverContext, isLocalId } from '../context.ts';
import { badJson, forbidden, MatrixError, notFound } from '../errors.ts';
import { affectedUsers, serverOf } from './accept.ts';
import { buildEvent, CREATE_STATE_KEY, MEMBER_TYPE, type PrevEvent } from './build.ts';
import { strippedState } from './members.ts';
import type { EventPipeline } from './pipeline.ts';
import { restrictedJoin, restrictedRefusal } from './restricted.ts';
import { serverAllowed as serverAllowedByAcl } from './server-acl.ts';

export type RemoteMembershipKind = 'join' | 'leave' | 'knock';

export interface ResidentService {
  /**
   * Whether `server` may take part in the room by its `m.room.server_acl` (no ACL, or a room
   * this server lacks: yes). Server names are compared without their port; deny wins over
   * allow. The one reader of the ACL: every room-scoped federation endpoint, `/send` and the
   * PDUs it carries, and the queries ask this.
   */
  serverAllowed(roomId: string, server: string): Promise<boolean>;
  /** make_join / make_leave / make_knock: the unsigned event for `origin`'s user to complete. */
  makeMembership(
    origin: string,
    roomId: string,
    userId: string,
    membership: RemoteMembershipKind,
    versions?: readonly string[],
  ): Promise<{ room_version: string; event: JsonObject }>;
  /**
   * send_join / send_leave / send_knock: the completed event, accepted here. A join answers
   * with the room's state before it and the auth chain (`omitMembers`: members left out but
   * those the spec keeps); a knock with the stripped state the knocker may see.
   */
  sendMembership(
    origin: string,
    roomId: string,
    eventId: string,
    pdu: Pdu,
    membership: RemoteMembershipKind,
    options?: { omitMembers?: boolean },
  ): Promise<JsonObject>;
  /** invite v2: signs the invite of one of our users and keeps it so their /sync shows it. */
  receiveInvite(
    origin: string,
    roomId: string,
    eventId: string,
    request: { roomVersion: string; event: Pdu; inviteRoomState: readonly JsonObject[] },
  ): Promise<Pdu>;
}

export function createResident(ctx: HomeserverContext, pipeline: EventPipeline): ResidentService {
  const { store, config } = ctx;

  async function serverAllowed(roomId: string, server: string): Promise<boolean> {
    const acl = await store.rooms.currentStateEvent(roomId, 'm.room.server_acl', '');
    // A rejected ACL event is no ACL (defensive: current state holds none).
    return serverAllowedByAcl(acl && acl.rejected === null ? acl.event.content : null, server);
  }

  /** The room, which this server is in, and `origin` may reach. */
  async function residentRoom(origin: string, roomId: string): Promise<RoomVersion> {
    const version = await pipeline.roomVersionOf(roomId);
    const inRoom =
      version !== null &&
      (await store.rooms.members(roomId, 'join')).some((m) => isLocalId(config, m.userId));
    if (!version || !inRoom) throw notFound(`This server is not in room ${roomId}`);
    if (!(await serverAllowed(roomId, origin)))
      throw forbidden(`${origin} is denied access to room ${roomId} by its server ACL`);
    return version;
  }

  function checkUser(origin: string, userId: string): void {
    if (!isValidUserId(userId, { historical: true }))
      throw badJson(`${JSON.stringify(userId)} is not a valid user ID`);
    if (serverOf(userId) !== origin) throw forbidden(`${userId} is not a user of ${origin}`);
  }

  /** Every event the `ids` cite through auth_events, transitively, the `ids` left out. */
  async function authChainOf(ids: readonly string[]): Promise<IdentifiedPdu[]> {
    const chain = new Map<string, IdentifiedPdu>();
    const seen = new Set(ids);
    let wanted = [...ids];
    const starts = new Set(ids);
    while (wanted.length > 0) {
      const found = await store.rooms.getEvents(wanted);
      const next: string[] = [];
      for (const stored of found.values()) {
        if (!starts.has(stored.event.event_id)) chain.set(stored.event.event_id, stored.event);
        for (const id of referencedIds(stored.event.auth_events)) {
          if (!seen.has(id)) {
            seen.add(id);
            next.push(id);
          }
        }
      }
      wanted = next;
    }
    // The create event of a v12 room is cited by no auth_events: the state carries it.
    return [...chain.values()];
  }

  return {
    serverAllowed,

    async makeMembership(origin, roomId, userId, membership, versions) {
      checkUser(origin, userId);
      const version = await residentRoom(origin, roomId);
      if (versions !== undefined && !versions.includes(version.id)) {
        throw new MatrixError(
          400,
          'M_INCOMPATIBLE_ROOM_VERSION',
          `Room ${roomId} is of version ${version.id}, which ${origin} does not support`,
          { room_version: version.id },
        );
      }
      if (membership === 'knock' && !version.knockJoinRule)
        throw forbidden(`Room version ${version.id} does not allow knocking`);
      const content: JsonObject = { membership };
      if (membership === 'join') {
        // A restricted room: name a member of ours who may invite, or say why not.
        const restricted = await restrictedJoin(ctx, pipeline, roomId, userId, version);
        const refusal = restrictedRefusal(restricted, userId, roomId);
        if (refusal) throw refusal;
        if (restricted.kind === 'authorised') content.join_authorised_via_users_server = restricted.by;
      }
      const draft = { sender: userId, type: MEMBER_TYPE, stateKey: userId, content };
      const keys = [CREATE_STATE_KEY, ...authTypesForEvent({ ...draft, state_key: userId }, version)];
      const template = await pipeline.lock.run(roomId, async () => {
        const [state, extremities] = await Promise.all([
          pipeline.stateEventsAt(roomId, keys),
          store.rooms.forwardExtremities(roomId),
        ]);
        const prevEvents: PrevEvent[] =
          version.eventIdFormat === 'server'
            ? [...(await store.rooms.getEvents(extremities.map((e) => e.eventId))).values()].map(
                (s) => s.event,
              )
            : extremities.map((e) => ({ event_id: e.eventId, depth: e.depth }));
        const built = await buildEvent(draft, { version, roomId, prevEvents, state }, pipeline.tools());
        // Would the room let this user do it now? Refuse here rather than at send_*.
        const allowed = checkAuth(built, state, version);
        if (!allowed.ok) throw forbidden(`${userId} may not ${membership} room ${roomId}: ${allowed.reason}`);
        return built;
      });
      const { signatures: _s, hashes: _h, event_id: _id, unsigned: _u, ...event } = template;
      return { room_version: version.id, event: { ...event, origin: config.serverName } as JsonObject };
    },

    async sendMembership(origin, roomId, eventId, pdu, membership, options = {}) {
      const version = await residentRoom(origin, roomId);
      let event: IdentifiedPdu;
      try {
        event = identify(validatePdu(pdu, version), version);
      } catch (err) {
        if (isCoreError(err)) throw badJson(`The event is not a valid PDU: ${err.message}`);
        throw err;
      }
      if (event.event_id !== eventId)
        throw badJson(`The event's ID is ${event.event_id}, not ${eventId} as the path says`);
      if (roomIdOf(event, version) !== roomId) throw badJson(`The event is not for room ${roomId}`);
      const content = event.content as { membership?: unknown };
      if (
        event.type !== MEMBER_TYPE ||
        content.membership !== membership ||
        event.state_key !== event.sender ||
        serverOf(event.sender) !== origin
      ) {
        throw badJson(`The event is not a ${membership} of a user of ${origin}`);
      }
      // "The servers active in the room (ie, those with joined members) before the join".
      const serversBefore = new Set<string>([config.serverName]);
      if (membership === 'join' && options.omitMembers) {
        for (const member of await store.rooms.members(roomId, 'join')) {
          const server = serverOf(member.userId);
          if (server) serversBefore.add(server);
        }
      }
      const authoriser = (content as { join_authorised_via_users_server?: unknown })
        .join_authorised_via_users_server;
      if (membership === 'join' && typeof authoriser === 'string' && isLocalId(config, authoriser)) {
        // A restricted join one of ours authorises: checked again now, then signed by this
        // server too, as the auth rules ask of the authoriser's server.
        const refusal = restrictedRefusal(
          await restrictedJoin(ctx, pipeline, roomId, event.sender, version),
          event.sender,
          roomId,
        );
        if (refusal) throw refusal;
        const cosigned = await cosignEvent(
          toWirePdu(event, version),
          config.serverName,
          ctx.signingKey,
          version,
        );
        pdu = cosigned;
        event = identify(cosigned, version);
      }
      // The resident server passes the membership on to the room's other servers.
      const [outcome] = await pipeline.acceptRemote(roomId, [pdu], { forward: true });
      if (outcome?.status !== 'accepted' && outcome?.status !== 'known') {
        const why = outcome && 'reason' in outcome && outcome.reason ? `: ${outcome.reason}` : '';
        throw forbidden(`The ${membership} was not accepted (${outcome?.status ?? 'unknown'})${why}`);
      }
      if (membership === 'leave') return {};
      if (membership === 'knock') return { knock_room_state: await strippedState(store, roomId) };
      const stateMap = (await store.rooms.stateAt(eventId, 'before')) ?? new Map();
      const stateIds = [...stateMap.entries()]
        .filter(([key]) => {
          if (!options.omitMembers || !key.startsWith(`${MEMBER_TYPE}\u0000`)) return true;
          // Partial state still carries the joiner's own membership (send_join "omit_members").
          return key === stateKey(MEMBER_TYPE, event.sender);
        })
        .map(([, id]) => id);
      const found = await store.rooms.getEvents(stateIds);
      const state = stateIds.flatMap((id) => {
        const stored = found.get(id);
        return stored ? [stored.event] : [];
      });
      const authChain = await authChainOf([...stateIds, eventId]);
      const wire = (e: IdentifiedPdu) => toWirePdu(e, version) as JsonObject;
      const answer: JsonObject = {
        origin: config.serverName,
        state: state.map(wire),
        auth_chain: authChain.map(wire),
        event: wire(event),
      };
      if (options.omitMembers) {
        answer.members_omitted = true;
        answer.servers_in_room = [...serversBefore];
      }
      return answer;
    },

    async receiveInvite(origin, roomId, eventId, request) {
      const version = roomVersions[request.roomVersion];
      if (!version) {
        throw new MatrixError(
          400,
          'M_INCOMPATIBLE_ROOM_VERSION',
          `This server does not support room version ${request.roomVersion}`,
          { room_version: request.roomVersion },
        );
      }
      let event: IdentifiedPdu;
      try {
        const checked = await verifyEvent(
          validatePdu(request.event, version),
          version,
          async (server, ts) => {
            const signatures = (
              request.event.signatures as Record<string, Record<string, string>> | undefined
            )?.[server];
            const keys = await ctx.keys.verifyKeys(server, Object.keys(signatures ?? {}), ts);
            return keys.size > 0 ? keys : undefined;
          },
        );
        if (checked.redacted) throw badJson('The invite does not match its content hash');
        event = identify(checked.pdu, version);
      } catch (err) {
        if (isCoreError(err)) throw badJson(`The invite is not a valid, signed PDU: ${err.message}`);
        throw err;
      }
      if (event.event_id !== eventId)
        throw badJson(`The invite's ID is ${event.event_id}, not ${eventId} as the path says`);
      if (roomIdOf(event, version) !== roomId) throw badJson(`The invite is not for room ${roomId}`);
      const target = event.state_key;
      if (
        event.type !== MEMBER_TYPE ||
        (event.content as { membership?: unknown }).membership !== 'invite' ||
        typeof target !== 'string'
      )
        throw badJson('The event is not an invite');
      if (serverOf(event.sender) !== origin)
        throw forbidden(`The invite's sender is not a user of ${origin}`);
      if (!isLocalId(config, target) || !(await store.accounts.getUser(target)))
        throw notFound(`Unknown user ${target}`);
      if ((await pipeline.roomVersionOf(roomId)) !== null && !(await serverAllowed(roomId, origin)))
        throw forbidden(`${origin} is denied access to room ${roomId} by its server ACL`);
      const signed = await cosignEvent(toWirePdu(event, version), config.serverName, ctx.signingKey, version);
      const kept: IdentifiedPdu = {
        ...identify(signed, version),
        unsigned: { invite_room_state: [...request.inviteRoomState] },
      };
      await store.rooms.persistEvents([{ event: kept, outOfBandMembership: true }]);
      ctx.notifier.notify({ rooms: [roomId], users: affectedUsers(kept) });
      return signed;
    },
  };
}
