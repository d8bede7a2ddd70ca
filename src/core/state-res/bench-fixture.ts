/**
 * A synthetic room for benchmarking (and property-testing) state resolution: a large shared
 * state, then two forks that each change some of it — kicks, bans, leaves, display names,
 * topic and custom state edits, a power levels change — so that the forks conflict on a few
 * dozen keys while agreeing on thousands. Deterministic: the same options give the same room,
 * byte for byte (a seeded PRNG, counters for IDs and timestamps, no clock).
 */
import type { IdentifiedPdu, StateMap } from '../pdu.ts';
import { stateKey } from '../pdu.ts';
import { getRoomVersion, type RoomVersion } from '../room-versions.ts';

export interface ForkedRoomOptions {
  /** About how many state events each fork's state holds. Default 10,000. */
  readonly stateEvents?: number;
  /** How many changes each fork makes after the fork point. Default 50. */
  readonly changesPerFork?: number;
  /** Seeds the choice of changes. Default 1. */
  readonly seed?: number;
  /** Default '11' (state resolution v2); '12' gives v2.1. */
  readonly roomVersion?: string;
}

export interface ForkedRoom {
  readonly version: RoomVersion;
  readonly events: ReadonlyMap<string, IdentifiedPdu>;
  readonly getEvent: (eventId: string) => IdentifiedPdu | undefined;
  /** The state after each fork. */
  readonly stateSets: [StateMap, StateMap];
  /** How many state events the shared state (before the fork) holds. */
  readonly stateEventCount: number;
}

/** mulberry32: a tiny, well-mixed 32-bit PRNG, good enough to pick test data. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function buildForkedRoom(options: ForkedRoomOptions = {}): ForkedRoom {
  const total = options.stateEvents ?? 10_000;
  const changes = options.changesPerFork ?? 50;
  const random = prng(options.seed ?? 1);
  const version = getRoomVersion(options.roomVersion ?? '11');
  const v12 = version.roomIdFromCreateEvent;
  const events = new Map<string, IdentifiedPdu>();

  const admin = '@admin:bench.example';
  const moderator = '@moderator:bench.example';
  const createId = '$bench-create';
  const roomId = v12 ? '!bench-create' : '!bench:bench.example';
  let counter = 0;

  const add = (
    fields: { sender: string; type: string; state_key: string; content: Record<string, unknown> },
    auth: readonly (string | undefined)[],
    prev: string | undefined,
    idHint?: string,
  ): string => {
    counter++;
    const eventId = idHint ?? `$bench-${counter}`;
    const pdu: IdentifiedPdu = {
      event_id: eventId,
      room_id: roomId,
      sender: fields.sender,
      type: fields.type,
      state_key: fields.state_key,
      content: fields.content as IdentifiedPdu['content'],
      origin_server_ts: 1_700_000_000_000 + counter,
      depth: counter,
      prev_events: prev ? [prev] : [],
      // v12 never cites the create event; the room ID names it.
      auth_events: auth.filter((id): id is string => id !== undefined && !(v12 && id === createId)),
      hashes: { sha256: '' },
      signatures: {},
    };
    if (v12 && fields.type === 'm.room.create') delete pdu.room_id;
    events.set(eventId, pdu);
    return eventId;
  };

  const base: StateMap = new Map();
  const set = (state: StateMap, id: string) => {
    const pdu = events.get(id) as IdentifiedPdu;
    state.set(stateKey(pdu.type, pdu.state_key as string), id);
  };
  const member = (state: StateMap, user: string) => state.get(stateKey('m.room.member', user));

  const create = add(
    {
      sender: admin,
      type: 'm.room.create',
      state_key: '',
      content: version.implicitRoomCreator
        ? { room_version: version.id }
        : { room_version: version.id, creator: admin },
    },
    [],
    undefined,
    createId,
  );
  set(base, create);
  const adminJoin = add(
    { sender: admin, type: 'm.room.member', state_key: admin, content: { membership: 'join' } },
    [create],
    create,
  );
  set(base, adminJoin);
  // In v12 the creator has infinite power and may not be listed.
  const users = v12 ? { [moderator]: 50 } : { [admin]: 100, [moderator]: 50 };
  const powerLevels = add(
    { sender: admin, type: 'm.room.power_levels', state_key: '', content: { users } },
    [create, adminJoin],
    adminJoin,
  );
  set(base, powerLevels);
  const joinRules = add(
    { sender: admin, type: 'm.room.join_rules', state_key: '', content: { join_rule: 'public' } },
    [create, adminJoin, powerLevels],
    powerLevels,
  );
  set(base, joinRules);
  let last = joinRules;

  const moderatorJoin = add(
    { sender: moderator, type: 'm.room.member', state_key: moderator, content: { membership: 'join' } },
    [create, powerLevels, joinRules],
    last,
  );
  set(base, moderatorJoin);
  last = moderatorJoin;

  // Half the state is members, half custom state set by the admin.
  const members: string[] = [];
  const customKeys: string[] = [];
  while (base.size < total) {
    if (base.size % 2 === 0) {
      const user = `@user${members.length}:bench.example`;
      members.push(user);
      last = add(
        { sender: user, type: 'm.room.member', state_key: user, content: { membership: 'join' } },
        [create, powerLevels, joinRules],
        last,
      );
    } else {
      const key = `key-${customKeys.length}`;
      customKeys.push(key);
      last = add(
        { sender: admin, type: 'org.example.bench', state_key: key, content: { value: 0 } },
        [create, powerLevels, adminJoin],
        last,
      );
    }
    set(base, last);
  }
  const forkPoint = last;

  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)] as T;

  const buildFork = (forkName: string, actor: string): StateMap => {
    const state = new Map(base);
    const joined = [...members];
    let prev = forkPoint;
    const actorJoin = member(state, actor) as string;
    for (let i = 0; i < changes; i++) {
      const currentPl = state.get(stateKey('m.room.power_levels', '')) as string;
      const kind = Math.floor(random() * 6);
      const user = pick(joined);
      const userJoin = member(state, user) as string;
      let id: string;
      if (kind === 0) {
        id = add(
          { sender: actor, type: 'm.room.member', state_key: user, content: { membership: 'ban' } },
          [create, currentPl, actorJoin, userJoin],
          prev,
        );
      } else if (kind === 1) {
        id = add(
          { sender: actor, type: 'm.room.member', state_key: user, content: { membership: 'leave' } },
          [create, currentPl, actorJoin, userJoin],
          prev,
        );
      } else if (kind === 2) {
        id = add(
          {
            sender: user,
            type: 'm.room.member',
            state_key: user,
            content: { membership: 'join', displayname: `${forkName} ${i}` },
          },
          [create, currentPl, joinRules, userJoin],
          prev,
        );
      } else if (kind === 3) {
        id = add(
          { sender: actor, type: 'm.room.topic', state_key: '', content: { topic: `${forkName} ${i}` } },
          [create, currentPl, actorJoin],
          prev,
        );
      } else if (kind === 4) {
        id = add(
          { sender: actor, type: 'org.example.bench', state_key: pick(customKeys), content: { value: i } },
          [create, currentPl, actorJoin],
          prev,
        );
      } else {
        const plContent = (events.get(currentPl) as IdentifiedPdu).content as {
          users: Record<string, number>;
        };
        id = add(
          {
            sender: actor,
            type: 'm.room.power_levels',
            state_key: '',
            content: { users: { ...plContent.users, [user]: 10 + (i % 40) } },
          },
          [create, currentPl, actorJoin],
          prev,
        );
      }
      // A kicked or banned user has no join left to cite: this fork stops picking them.
      const pdu = events.get(id) as IdentifiedPdu;
      if (pdu.type === 'm.room.member' && pdu.content.membership !== 'join')
        joined.splice(joined.indexOf(user), 1);
      set(state, id);
      prev = id;
    }
    return state;
  };

  const stateSets: [StateMap, StateMap] = [buildFork('admin', admin), buildFork('moderator', moderator)];
  return { version, events, getEvent: (id) => events.get(id), stateSets, stateEventCount: base.size };
}

/** The benchmark's room: two forks of 10,000 state events, 50 changes each, room version 11. */
export function buildBenchRoom(options: ForkedRoomOptions = {}): ForkedRoom {
  return buildForkedRoom(options);
}
