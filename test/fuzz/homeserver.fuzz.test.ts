/**
 * The whole homeserver under hostile input (issue 4, "How it is checked"): every endpoint of
 * `clientEndpoints`, through `hs.fetch`, gets malformed and hostile requests — no token, unknown
 * tokens, bodies that are not JSON, too large or too deep, every body field and query parameter
 * of the spec's request made the wrong type, invalid room, event, user IDs and aliases in the
 * path, and another user's resources (Bob at Alice's account data, filters, devices, profile,
 * a room he is not in, a room where he may not act).
 *
 * Each answer must be a well-formed Matrix response (`checkMatrixResponse`: 4xx with a string
 * `errcode` and `error`, or a UIA 401 with `flows`), never a 5xx, never a logged error, and
 * within a time bound. A rejected request must leave the store as it was, and nothing Bob or an
 * anonymous client sends may change Alice's data or show her private data back: Alice's
 * private values all carry a marker that no answer to anyone else may contain.
 *
 * The store is watched in two ways: its writing methods are counted (so the observable state is
 * dumped and compared only when something wrote), and a full dump is compared after each
 * endpoint whatever the counters say.
 */
import { writeFileSync } from 'node:fs';
import fc from 'fast-check';
import stableStringify from 'fast-json-stable-stringify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientEndpoints } from '../../src/api/client/index.ts';
import { type Endpoint, fullPaths } from '../../src/api/endpoint.ts';
import {
  checkMatrixResponse,
  fillTemplate,
  hostileBody,
  hostileRequest,
  toRequest,
} from '../../src/api/testing-fuzz.ts';
import {
  isValidEventId,
  isValidRoomAlias,
  isValidRoomId,
  isValidServerName,
  isValidUserId,
} from '../../src/core/index.ts';
import { parseJson } from '../../src/core/json.ts';
import type { Logger } from '../../src/homeserver/context.ts';
import type { Services } from '../../src/homeserver/services.ts';
import type { Store } from '../../src/storage/store.ts';
import { createTestHomeserver, type TestHomeserver } from '../../src/testing.ts';
import { readSpecRequests, routeKey, type SpecRequest } from './testing.ts';

const SERVER = 'fuzz.localhost';
const ORIGIN = `http://${SERVER}`;
/** In every private value of Alice's: no answer to Bob or to an anonymous client may hold it. */
const SECRET = 'zz-alice-private-7f3a';
const BOB_PASSWORD = 'bob-correct-horse';
/** Longest wait for one answer; /sync long-polls are capped far below it (`maxSyncTimeoutMs`). */
const REQUEST_BOUND_MS = 5_000;
const UNLIMITED = { perSecond: 1e9, burst: 1e9 };
/**
 * `FUZZ_SCALE=10 FUZZ_SEED=3 npx vitest run test/fuzz` hunts harder (more cases of each kind,
 * other random samples); the default keeps the run to seconds on a 2-core CI machine.
 */
const SCALE = Math.max(1, Number(process.env.FUZZ_SCALE ?? 1) || 1);
const SEED = Number(process.env.FUZZ_SEED ?? 0) || 0;
/** `FUZZ_LOG=/tmp/fuzz.txt` writes every targeted request with its answer there. */
const LOG_FILE = process.env.FUZZ_LOG;

interface User {
  userId: string;
  deviceId: string;
  accessToken: string;
}

interface World {
  hs: TestHomeserver;
  services: Services;
  store: Store;
  alice: User;
  bob: User;
  carol: User;
  /** Alice's invite-only room, Bob not in it. */
  r1: string;
  /** Alice's public room, Bob a plain member. */
  r2: string;
  /** Bob's own public room, where he may do anything. */
  r3: string;
  e1: string;
  e2: string;
  e3: string;
  aliceFilter: string;
  bobFilter: string;
  /** Media IDs each uploaded (media is readable by any signed-in user: no marker in it). */
  aliceMedia: string;
  bobMedia: string;
  /** Pagination and sync tokens Alice was given in her private room. */
  realTokens: string[];
}

// --- the store, watched ---------------------------------------------------------------------

/** Store methods that only read; any other call counts as a write. */
const READS = new Set([
  'getEvent',
  'getEvents',
  'timeline',
  'timelines',
  'messages',
  'roomsWithEvents',
  'eventAtStream',
  'forwardExtremities',
  'childrenOf',
  'stateAt',
  'stateAtStream',
  'currentState',
  'currentStateEvents',
  'currentStateEvent',
  'membership',
  'roomsForUser',
  'members',
  'countMembers',
  'eventForTransaction',
  'relations',
  'relationSummaries',
  'searchEvents',
  'threads',
  'threadParticipants',
  'notificationsFor',
  'getRoom',
  'publishedRooms',
  'getAlias',
  'aliasesOf',
  'getUser',
  'getAccessToken',
  'getDevice',
  'listDevices',
  'getUiaSession',
  'getRegistrationToken',
  'getAccountData',
  'accountDataSince',
  'getFilter',
  'slidingSyncConnection',
  'pushRules',
  'getProfile',
  'receiptsSince',
  'roomReceipts',
  'getReceipt',
  'notificationCounts',
  'getDeviceKeys',
  'deviceListChanges',
  'countOneTimeKeys',
  'unusedFallbackKeyTypes',
  'getCrossSigningKeys',
  'getSignatures',
  'toDeviceMessages',
  'getBackupVersion',
  'getBackupSessions',
  'getMedia',
  'getMediaInfo',
  'outbox',
  'destinationsWithOutbox',
  'getDestination',
  'getServerKeys',
  'getSecret',
]);

/** A sliding sync request (MSC4186) as the clients send it, subscribing to `roomId`. */
function slidingSyncExample(roomId: string): Record<string, unknown> {
  return {
    conn_id: 'room-list',
    lists: {
      all: {
        ranges: [[0, 19]],
        timeline_limit: 1,
        required_state: [
          ['m.room.name', ''],
          ['m.room.member', '$LAZY'],
          ['m.room.member', '$ME'],
        ],
        filters: { not_room_types: ['m.space'], is_dm: false },
      },
      invites: { ranges: [[0, 9]], timeline_limit: 0, filters: { is_invite: true } },
    },
    room_subscriptions: { [roomId]: { timeline_limit: 20, required_state: [['*', '*']] } },
    unsubscribe_rooms: [],
    extensions: {
      to_device: { enabled: true, limit: 100 },
      e2ee: { enabled: true },
      account_data: { enabled: true },
      receipts: { enabled: true, rooms: ['*'] },
      typing: { enabled: true, lists: ['all'] },
    },
  };
}

/** Wraps every writing method of the store's areas in place; returns the running count. */
function countWrites(store: Store): { count: number } {
  const counter = { count: 0 };
  for (const area of [
    store.rooms,
    store.accounts,
    store.userData,
    store.receipts,
    store.e2ee,
    store.media,
    store.federation,
  ]) {
    const target = area as unknown as Record<string, unknown>;
    for (const name of Object.keys(target)) {
      const method = target[name];
      if (typeof method !== 'function' || READS.has(name)) continue;
      target[name] = (...args: unknown[]) => {
        counter.count++;
        return (method as (...a: unknown[]) => unknown).apply(area, args);
      };
    }
  }
  return counter;
}

type Dump = Record<string, unknown>;

/** The store's observable state, canonically: positions, the users' data, the test rooms. */
async function dump(w: World): Promise<Dump> {
  const { store } = w;
  const out: Dump = {
    positions: await store.positions(),
    published: (await store.rooms.publishedRooms()).sort(),
  };
  const users = { alice: w.alice, bob: w.bob, carol: w.carol };
  // Filter IDs come from one counter for all users: probe until a long run of unused IDs.
  const filters: Record<string, Record<string, unknown>> = { alice: {}, bob: {}, carol: {} };
  for (let id = 1, misses = 0; misses < 16; id++) {
    misses++;
    for (const [name, user] of Object.entries(users)) {
      const f = await store.userData.getFilter(user.userId, String(id));
      if (f) {
        (filters[name] as Record<string, unknown>)[id] = f;
        misses = 0;
      }
    }
  }
  for (const [name, user] of Object.entries(users)) {
    out[name] = {
      user: await store.accounts.getUser(user.userId),
      // Last-seen times are bookkeeping of every authenticated request, not client-visible data.
      devices: (await store.accounts.listDevices(user.userId)).map(({ lastSeenAt, lastSeenIp, ...d }) => d),
      profile: await store.userData.getProfile(user.userId),
      accountData: await store.userData.accountDataSince(user.userId, 0),
      pushRules: await store.userData.pushRules(user.userId),
      filters: filters[name],
      memberships: await store.rooms.roomsForUser(user.userId),
      tokenValid: (await store.accounts.getAccessToken(user.accessToken)) !== null,
    };
  }
  for (const [name, roomId] of Object.entries({ r1: w.r1, r2: w.r2, r3: w.r3 })) {
    out[name] = {
      room: await store.rooms.getRoom(roomId),
      state: [...(await store.rooms.currentState(roomId))].sort(),
      members: await store.rooms.members(roomId),
      extremities: (await store.rooms.forwardExtremities(roomId)).map((e) => e.eventId).sort(),
      aliases: await store.rooms.aliasesOf(roomId),
      receipts: await store.receipts.roomReceipts(roomId),
    };
  }
  return out;
}

/** What belongs to Alice in a dump: nothing Bob or an anonymous client does may change it. */
function alicePart(d: Dump, w: World): Dump {
  const r2 = d.r2 as Record<string, unknown[]>;
  const mine = (x: unknown) => JSON.stringify(x).includes(w.alice.userId);
  return {
    alice: d.alice,
    r1: d.r1,
    published: (d.published as string[]).filter((r) => r === w.r1 || r === w.r2),
    r2: {
      room: r2.room,
      // Bob's own membership event is his to change; every other piece of state is Alice's.
      state: (r2.state as [string, string][]).filter(([key]) => key !== `m.room.member\u0000${w.bob.userId}`),
      aliases: (r2.aliases as { creator: string }[]).filter((a) => a.creator === w.alice.userId),
      receipts: (r2.receipts as unknown[]).filter(mine),
      aliceMembership: (r2.members as { userId: string }[]).filter((m) => m.userId === w.alice.userId),
    },
  };
}

function diffKeys(a: Dump, b: Dump): string[] {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  const out: string[] = [];
  for (const k of keys) {
    const x = a[k];
    const y = b[k];
    if (stableStringify(x) === stableStringify(y)) continue;
    if (x && y && typeof x === 'object' && typeof y === 'object' && !Array.isArray(x)) {
      for (const sub of diffKeys(x as Dump, y as Dump)) out.push(`${k}.${sub}`);
    } else {
      out.push(`${k}: ${stableStringify(x).slice(0, 300)} → ${stableStringify(y).slice(0, 300)}`);
    }
  }
  return out;
}

// --- hostile values -------------------------------------------------------------------------

/** Path parameter values by kind: syntactically broken ones, and valid ones that name nothing. */
const BAD_IDS: Record<string, readonly string[]> = {
  media: ['..', 'a.b', '%2F', 'a b', '💥', '-', 'x'.repeat(300), 'unknownMediaId'],
  server: [
    '..',
    'bad server',
    '[::1',
    'a_b.example',
    'host:99999',
    '💥',
    'elsewhere.invalid',
    'x'.repeat(300),
  ],
  room: [
    'not-a-room',
    '!',
    '!a b',
    '!:fuzz.localhost',
    '#shared:fuzz.localhost',
    '@bob:fuzz.localhost',
    `!${'a'.repeat(300)}:fuzz.localhost`,
    '!unknown:fuzz.localhost',
    '!r:elsewhere.invalid',
  ],
  roomOrAlias: [
    '#',
    '#nocolon',
    '#:fuzz.localhost',
    'plain',
    '@bob:fuzz.localhost',
    `#${'a'.repeat(300)}:fuzz.localhost`,
    '#unknown:fuzz.localhost',
    '!unknown:fuzz.localhost',
    '#a:elsewhere.invalid',
  ],
  event: [
    'no-dollar',
    '$',
    '$a b',
    '!room:fuzz.localhost',
    `$${'A'.repeat(300)}`,
    '$unknownEventIdXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX',
    '$remote:elsewhere.invalid',
  ],
  user: [
    '@',
    'nouser',
    '@bob',
    '@:fuzz.localhost',
    '@bob:',
    '@Bad User:fuzz.localhost',
    `@${'a'.repeat(300)}:fuzz.localhost`,
    '@unknown:fuzz.localhost',
    '@x:elsewhere.invalid',
  ],
  alias: [
    '#',
    'noalias',
    '#a',
    '#:fuzz.localhost',
    '#a:',
    '!room:fuzz.localhost',
    `#${'a'.repeat(300)}:fuzz.localhost`,
    '#unknown:fuzz.localhost',
    '#a:elsewhere.invalid',
  ],
  other: [
    '.',
    '..',
    '\u0000',
    'x'.repeat(1000),
    '💥',
    'a/b',
    '%',
    '-1',
    '__proto__',
    'constructor',
    'm.fully_read',
  ],
};

function idKind(param: string): keyof typeof BAD_IDS {
  if (param === 'roomIdOrAlias') return 'roomOrAlias';
  if (param === 'roomId') return 'room';
  if (param === 'eventId') return 'event';
  if (param === 'userId') return 'user';
  if (param === 'roomAlias') return 'alias';
  if (param === 'mediaId') return 'media';
  if (param === 'serverName') return 'server';
  return 'other';
}

/** Whether a value is syntactically invalid for its kind (then the answer must be an error). */
function syntacticallyInvalid(kind: keyof typeof BAD_IDS, value: string): boolean {
  switch (kind) {
    case 'room':
      return !isValidRoomId(value);
    case 'roomOrAlias':
      return !isValidRoomId(value) && !isValidRoomAlias(value);
    case 'event':
      return !isValidEventId(value);
    case 'user':
      return !isValidUserId(value, { historical: true });
    case 'alias':
      return !isValidRoomAlias(value);
    case 'media':
      return !/^[A-Za-z0-9_-]+$/.test(value);
    case 'server':
      return !isValidServerName(value);
    default:
      return false;
  }
}

/** Values of the wrong JSON type for a field the spec types as `types`. */
function wrongValues(types: readonly string[], example: unknown): unknown[] {
  const t =
    types.length > 0
      ? types
      : example === undefined
        ? []
        : [Array.isArray(example) ? 'array' : example === null ? 'null' : typeof example];
  if (t.includes('string')) return [12345, { nested: ['x'] }];
  if (t.includes('integer') || t.includes('number')) return ['12', 2 ** 53 + 2];
  if (t.includes('boolean')) return ['true', 1];
  if (t.includes('array')) return [{ 0: 'x' }, ['x', 1, null, { a: [] }]];
  if (t.includes('object')) return ['string', [1, 2]];
  return [null, { __proto__: { polluted: true } }];
}

const deep = (n: number) => `{"a":${'['.repeat(n)}${']'.repeat(n)}}`;

/** Bodies every endpoint taking one gets (with a valid token and valid path parameters). */
const BODY_CASES: { name: string; body: BodyInit; errcode?: string; status?: number }[] = [
  { name: 'not JSON', body: '{', errcode: 'M_NOT_JSON' },
  {
    name: 'invalid UTF-8',
    body: new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]),
    errcode: 'M_NOT_JSON',
  },
  { name: 'array', body: '[]', errcode: 'M_BAD_JSON' },
  { name: 'string', body: '"str"', errcode: 'M_BAD_JSON' },
  {
    name: 'too large',
    body: JSON.stringify({ k: 'a'.repeat(70 * 1024) }),
    errcode: 'M_TOO_LARGE',
    status: 413,
  },
  { name: 'deep', body: deep(300), errcode: 'M_BAD_JSON' },
  { name: 'very deep', body: deep(25_000), errcode: 'M_BAD_JSON' },
  { name: 'huge number', body: '{"n":1e400,"limit":1e400}', errcode: 'M_BAD_JSON' },
  { name: 'prototype keys', body: '{"__proto__":{"admin":true},"constructor":{"prototype":{"x":1}}}' },
  {
    // Refused everywhere alike (core/json.ts): no JSON encoder can sign or store them exactly.
    name: 'lone surrogates, empty key',
    body: '{"":1,"body":"\\ud800","name":"\\udfff x","msgtype":"\\ud83d"}',
    errcode: 'M_BAD_JSON',
  },
  { name: 'lone surrogate in a key', body: '{"\\udc00":1}', errcode: 'M_BAD_JSON' },
  // The V8 escaped-key bug's trigger and victims (nodejs/node#63785): read exactly, whatever follows.
  { name: 'escaped keys', body: '{"\\\\":1,"\\t":{"\\u00e9":[1]},"\\"":2}' },
  { name: 'duplicate keys', body: '{"a":1,"a":2,"body":"x","body":"y"}' },
];

/** Plausible event contents per type, for the send and state endpoints. */
function eventExamples(w: World, own: boolean): Record<string, Record<string, unknown>> {
  const target = own ? w.carol.userId : w.alice.userId;
  return {
    'm.room.message': {
      msgtype: 'm.text',
      body: 'hello',
      format: 'org.matrix.custom.html',
      formatted_body: '<b>hi</b>',
    },
    'm.room.redaction': { redacts: own ? w.e3 : w.e2, reason: 'spam' },
    'm.reaction': { 'm.relates_to': { rel_type: 'm.annotation', event_id: own ? w.e3 : w.e2, key: '👍' } },
    'm.room.power_levels': {
      users: { [w.bob.userId]: 100, [target]: 50 },
      users_default: 0,
      events: { 'm.room.name': 50 },
      events_default: 0,
      state_default: 50,
      ban: 50,
      kick: 50,
      redact: 50,
      invite: 0,
      notifications: { room: 50 },
    },
    'm.room.member': { membership: 'invite', displayname: 'X', reason: 'r' },
    'm.room.join_rules': { join_rule: 'restricted', allow: [{ type: 'm.room_membership', room_id: w.r2 }] },
    'm.room.name': { name: 'Name' },
    'm.room.create': { room_version: '11', creator: target },
    'm.room.history_visibility': { history_visibility: 'joined' },
    'm.room.canonical_alias': { alias: '#bobs:fuzz.localhost', alt_aliases: ['#bobs:fuzz.localhost'] },
    'm.room.server_acl': { allow: ['*'], deny: ['evil.example'], allow_ip_literals: false },
    'm.room.tombstone': { body: 'moved', replacement_room: w.r2 },
    'm.room.encryption': { algorithm: 'm.megolm.v1.aes-sha2' },
    'm.room.guest_access': { guest_access: 'can_join' },
    'org.example.fuzz': { anything: [1, 'two'] },
  };
}
const STATE_TYPES = [
  'm.room.power_levels',
  'm.room.member',
  'm.room.join_rules',
  'm.room.name',
  'm.room.create',
  'm.room.history_visibility',
  'm.room.canonical_alias',
  'm.room.server_acl',
  'm.room.tombstone',
  'm.room.encryption',
  'm.room.guest_access',
  'org.example.fuzz',
];
const SEND_TYPES = ['m.room.message', 'm.room.redaction', 'm.reaction', 'm.room.member', 'org.example.fuzz'];

/** Garbage for query parameters, by name or type. */
function badQueryValues(
  name: string,
  types: readonly string[],
  hasEnum: boolean,
  realTokens: readonly string[],
): string[] {
  if (name === 'filter')
    return [
      '{',
      '[]',
      '{"room":{"timeline":{"limit":"x"}}}',
      '{"event_fields":[1],"lazy_load_members":"yes"}',
      '999999',
    ];
  // Broken tokens, and real ones from elsewhere (another user's sync, another room's pagination).
  if (['since', 'from', 'to'].includes(name))
    return [
      's-1',
      's1_2_3_4_5_6_7_8_9',
      't0',
      'abc',
      's99999999999999999999',
      't-5_0',
      `t${'9'.repeat(30)}_1`,
      ...realTokens,
    ];
  if (types.includes('integer') || types.includes('number'))
    return ['-1', 'abc', '1e400', '99999999999999999999'];
  if (types.includes('boolean')) return ['maybe', ''];
  if (hasEnum) return ['x', ''];
  return ['', '\u0000', 'x'.repeat(500)];
}

/**
 * Endpoints that name Alice or her private room and still answer Bob, rightly: profiles are
 * public (profile.yaml), Bob shares a room with her (presence), a room's directory visibility
 * is public (list_public_rooms.yaml, no auth), and forgetting a room one was never in changes
 * nothing (Synapse answers 200 too). Whatever they answer, they may not show the marker.
 */
const PUBLIC_ABOUT_OTHERS = new Set([
  'GET /profile/{userId}',
  'GET /profile/{userId}/{keyName}',
  'GET /presence/{userId}/status',
  'GET /directory/list/room/{roomId}',
  'POST /rooms/{roomId}/forget',
  // A key backup is the caller's own: a room ID in its path names a room of that backup, not
  // access to the room (key_backup.yaml); Bob reads and writes only his own backup.
  'GET /room_keys/keys/{roomId}',
  'PUT /room_keys/keys/{roomId}',
  'DELETE /room_keys/keys/{roomId}',
  'GET /room_keys/keys/{roomId}/{sessionId}',
  'PUT /room_keys/keys/{roomId}/{sessionId}',
  'DELETE /room_keys/keys/{roomId}/{sessionId}',
  // Reporting a user is open to anyone who can name them (report_content.yaml); the report is
  // kept for the admins and shows the reporter nothing.
  'POST /users/{userId}/report',
]);

// --- the test ---------------------------------------------------------------------------------

interface Case {
  kind: string;
  /** Bob (with his current token), no token, an unknown token, or a given Authorization header. */
  actor: 'bob' | 'none' | 'unknown' | { header: string };
  values: Record<string, string>;
  query: string;
  body: BodyInit | undefined;
  /** The answer must be this errcode (and status, if given). */
  errcode?: string;
  status?: number;
  /** The answer must be an error (an invalid identifier in the path, Alice's private things). */
  mustFail?: boolean;
}

/** Path parameters naming Bob's own things: where hostile input reaches deepest. */
function bobsValues(w: World): Record<string, string> {
  return {
    userId: w.bob.userId,
    roomId: w.r3,
    roomIdOrAlias: w.r3,
    eventId: w.e3,
    roomAlias: '#bobs:fuzz.localhost',
    deviceId: w.bob.deviceId,
    filterId: w.bobFilter,
    keyName: 'displayname',
    type: 'org.example.fuzz',
    tag: 'u.fuzz',
    receiptType: 'm.read',
    eventType: 'm.room.message',
    stateKey: '',
    kind: 'override',
    ruleId: 'fuzz.rule',
    txnId: 'x',
    serverName: SERVER,
    mediaId: w.bobMedia,
    fileName: 'f.txt',
  };
}

describe('fuzz: the whole homeserver', () => {
  let w: World;
  const errors: string[] = [];
  const logger: Logger = {
    debug() {},
    info() {},
    warn() {},
    error: (message, fields) => errors.push(`${message} ${JSON.stringify(fields)}`),
  };
  let writes: { count: number };

  async function call(user: User | null, method: string, path: string, body?: unknown) {
    const r = await w.hs.call(method, path, {
      ...(user ? { token: user.accessToken } : {}),
      ...(body === undefined ? {} : { body }),
    });
    if (r.status !== 200) throw new Error(`set-up ${method} ${path} → ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  }
  const enc = encodeURIComponent;

  beforeAll(async () => {
    const hs = await createTestHomeserver({
      serverName: SERVER,
      logger,
      maxSyncTimeoutMs: 100,
      rateLimits: { login: UNLIMITED, register: UNLIMITED, message: UNLIMITED, default: UNLIMITED },
    });
    const services = hs.internals;
    const v3 = '/_matrix/client/v3';
    // Bob registers for real, so he has a password and UIA input reaches the password stage.
    const challenge = await hs.call('POST', `${v3}/register`, {
      body: { username: 'bob', password: BOB_PASSWORD },
    });
    const registered = await hs.call('POST', `${v3}/register`, {
      body: {
        username: 'bob',
        password: BOB_PASSWORD,
        auth: { type: 'm.login.dummy', session: challenge.body.session },
      },
    });
    const bob = {
      userId: registered.body.user_id as string,
      deviceId: registered.body.device_id as string,
      accessToken: registered.body.access_token as string,
    };
    const [alice, carol] = [await hs.createUser('alice'), await hs.createUser('carol')];
    w = { hs, services, store: hs.store, alice, bob, carol } as unknown as World;

    // Alice's private things, each carrying the marker.
    await call(alice, 'PUT', `${v3}/devices/${enc(alice.deviceId)}`, { display_name: `phone ${SECRET}` });
    w.aliceFilter = (
      await call(alice, 'POST', `${v3}/user/${enc(alice.userId)}/filter`, {
        room: { timeline: { not_types: [`org.${SECRET}`] } },
      })
    ).filter_id as string;
    await call(alice, 'PUT', `${v3}/user/${enc(alice.userId)}/account_data/org.example.secret`, {
      note: SECRET,
    });
    w.r1 = (
      await call(alice, 'POST', `${v3}/createRoom`, {
        preset: 'private_chat',
        name: `Room ${SECRET}`,
        topic: SECRET,
        room_alias_name: 'priv',
      })
    ).room_id as string;
    w.e1 = (
      await call(alice, 'PUT', `${v3}/rooms/${enc(w.r1)}/send/m.room.message/t1`, {
        msgtype: 'm.text',
        body: SECRET,
      })
    ).event_id as string;
    await call(
      alice,
      'PUT',
      `${v3}/user/${enc(alice.userId)}/rooms/${enc(w.r1)}/account_data/org.example.secret`,
      { note: SECRET },
    );
    await call(alice, 'PUT', `${v3}/user/${enc(alice.userId)}/rooms/${enc(w.r1)}/tags/u.secret`, {
      order: 0.5,
      note: SECRET,
    });
    await call(alice, 'PUT', `${v3}/pushrules/global/content/secret_rule`, {
      pattern: SECRET,
      actions: ['notify'],
    });
    await call(alice, 'POST', `${v3}/rooms/${enc(w.r1)}/receipt/m.read/${enc(w.e1)}`, {});
    // Her key backup and a to-device message waiting for her device.
    const backup = await call(alice, 'POST', `${v3}/room_keys/version`, {
      algorithm: 'm.megolm_backup.v1.curve25519-aes-sha2',
      auth_data: { public_key: SECRET },
    });
    await call(alice, 'PUT', `${v3}/room_keys/keys/${enc(w.r1)}/s1?version=${backup.version}`, {
      first_message_index: 0,
      forwarded_count: 0,
      is_verified: true,
      session_data: { ciphertext: SECRET },
    });
    await call(alice, 'PUT', `${v3}/sendToDevice/org.example.secret/td1`, {
      messages: { [alice.userId]: { [alice.deviceId]: { note: SECRET } } },
    });
    // The room Alice and Bob share; Alice is its admin.
    w.r2 = (
      await call(alice, 'POST', `${v3}/createRoom`, {
        preset: 'public_chat',
        name: 'Shared',
        room_alias_name: 'shared',
      })
    ).room_id as string;
    await call(bob, 'POST', `${v3}/join/${enc(w.r2)}`, {});
    w.e2 = (
      await call(alice, 'PUT', `${v3}/rooms/${enc(w.r2)}/send/m.room.message/t2`, {
        msgtype: 'm.text',
        body: 'hi',
      })
    ).event_id as string;
    // Bob's own room and things, where hostile input reaches deepest.
    w.r3 = (
      await call(bob, 'POST', `${v3}/createRoom`, {
        preset: 'public_chat',
        name: 'Bob',
        room_alias_name: 'bobs',
      })
    ).room_id as string;
    w.e3 = (
      await call(bob, 'PUT', `${v3}/rooms/${enc(w.r3)}/send/m.room.message/t3`, {
        msgtype: 'm.text',
        body: 'mine',
      })
    ).event_id as string;
    w.bobFilter = (await call(bob, 'POST', `${v3}/user/${enc(bob.userId)}/filter`, {})).filter_id as string;
    const uploadAs = async (user: User, text: string) => {
      const res = await hs.fetch(
        new Request(`${ORIGIN}/_matrix/media/v3/upload?filename=f.txt`, {
          method: 'POST',
          headers: { authorization: `Bearer ${user.accessToken}`, 'content-type': 'text/plain' },
          body: text,
        }),
      );
      const uri = (parseJson(await res.text()) as { content_uri?: string }).content_uri ?? '';
      return uri.slice(uri.lastIndexOf('/') + 1);
    };
    w.aliceMedia = await uploadAs(alice, 'alice media');
    w.bobMedia = await uploadAs(bob, 'bob media');
    const page = await call(alice, 'GET', `${v3}/rooms/${enc(w.r1)}/messages?dir=b&limit=2`);
    const synced = await call(alice, 'GET', `${v3}/sync`);
    w.realTokens = [page.start, page.end, synced.next_batch].filter(
      (t): t is string => typeof t === 'string',
    );
    writes = countWrites(hs.store);
  }, 60_000);

  afterAll(() => w?.hs.close());

  /** Put back what a successful request may have undone: Bob's token and his joins. */
  async function repair(): Promise<void> {
    const { store, bob, services } = w;
    if (!(await store.accounts.getAccessToken(bob.accessToken))) {
      bob.accessToken = `bob-${Math.random().toString(36).slice(2)}`;
      await store.accounts.createSession({
        userId: bob.userId,
        deviceId: bob.deviceId,
        accessToken: bob.accessToken,
        now: Date.now(),
      });
    }
    if ((await store.rooms.membership(w.r2, bob.userId))?.membership !== 'join') {
      await services.rooms.join(bob.userId, w.r2);
    }
    if ((await store.rooms.membership(w.r3, bob.userId))?.membership !== 'join') {
      // Bob may have closed his room behind him (join rules); then he gets a new one.
      try {
        await services.rooms.join(bob.userId, w.r3);
      } catch {
        w.r3 = (await services.rooms.createRoom(bob.userId, { preset: 'public_chat' })).roomId;
        w.e3 = (
          await services.rooms.sendEvent({
            sender: bob.userId,
            roomId: w.r3,
            type: 'm.room.message',
            content: { body: 'mine', msgtype: 'm.text' },
          })
        ).eventId;
      }
    }
  }

  it('answers hostile input to every endpoint with a Matrix error and changes nothing it refused', async () => {
    const spec = readSpecRequests();
    const endpoints = clientEndpoints(w.services);
    const problems: string[] = [];
    const statuses = new Map<string, number>();
    let requests = 0;
    let txn = 0;
    // The marker check is not vacuous: Alice herself is shown her private data.
    const v3 = '/_matrix/client/v3';
    for (const path of [
      `${v3}/devices/${enc(w.alice.deviceId)}`,
      `${v3}/user/${enc(w.alice.userId)}/filter/${w.aliceFilter}`,
      `${v3}/user/${enc(w.alice.userId)}/account_data/org.example.secret`,
      `${v3}/user/${enc(w.alice.userId)}/rooms/${enc(w.r1)}/tags`,
      `${v3}/rooms/${enc(w.r1)}/event/${enc(w.e1)}`,
      `${v3}/rooms/${enc(w.r1)}/state`,
      `${v3}/pushrules/`,
    ]) {
      expect(
        JSON.stringify((await w.hs.call('GET', path, { token: w.alice.accessToken })).body),
        path,
      ).toContain(SECRET);
    }
    let snapshot = await dump(w);
    const log: string[] = [];

    const own = (): Record<string, string> => bobsValues(w);
    const foreignPrivate = (): Record<string, string> => ({
      ...own(),
      userId: w.alice.userId,
      roomId: w.r1,
      roomIdOrAlias: '#priv:fuzz.localhost',
      eventId: w.e1,
      roomAlias: '#priv:fuzz.localhost',
      deviceId: w.alice.deviceId,
      filterId: w.aliceFilter,
      type: 'org.example.secret',
      tag: 'u.secret',
      ruleId: 'secret_rule',
      kind: 'content',
      mediaId: w.aliceMedia,
    });
    const foreignShared = (): Record<string, string> => ({
      ...foreignPrivate(),
      roomId: w.r2,
      roomIdOrAlias: w.r2,
      eventId: w.e2,
      roomAlias: '#shared:fuzz.localhost',
      stateKey: w.alice.userId,
      eventType: 'm.room.member',
    });

    /** A plausible body for the endpoint in a context: the spec's example with its IDs replaced. */
    function exampleFor(
      e: Endpoint,
      req: SpecRequest | undefined,
      values: Record<string, string>,
      ownCtx: boolean,
    ): Record<string, unknown> {
      const events = eventExamples(w, ownCtx);
      // Sliding sync is in no spec file yet: a request as Element X makes one, on the context's room.
      if (e.method === 'POST' && e.path === '/sync') return slidingSyncExample(values.roomId as string);
      if (/\/(send|state)\/\{eventType\}/.test(e.path))
        return structuredClone(
          events[
            Object.hasOwn(events, values.eventType as string)
              ? (values.eventType as string)
              : 'org.example.fuzz'
          ],
        ) as Record<string, unknown>;
      const target = ownCtx ? w.carol.userId : w.alice.userId;
      const swap = (x: unknown): unknown => {
        if (typeof x === 'string') {
          if (/^@[^:]+:./.test(x)) return target;
          if (/^![^:]+:./.test(x)) return values.roomId;
          if (/^\$./.test(x)) return values.eventId;
          if (/^#[^:]+:./.test(x)) return values.roomAlias;
          return x;
        }
        if (Array.isArray(x)) return x.map(swap);
        if (x && typeof x === 'object')
          return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, swap(v)]));
        return x;
      };
      const body = (swap(req?.example ?? {}) as Record<string, unknown>) ?? {};
      // A real password stage with a wrong password: hostile auth dicts get checked all the
      // way, and Bob's account survives (a right one could deactivate it).
      if (req?.properties.some((p) => p.name === 'auth')) {
        body.auth = {
          type: 'm.login.password',
          identifier: { type: 'm.id.user', user: w.bob.userId },
          password: 'wrong',
        };
      }
      return body;
    }

    function casesFor(e: Endpoint, index: number): Case[] {
      const req = spec.get(routeKey(e.method, fullPaths(e)[0] ?? e.path));
      const params = [...e.path.matchAll(/\{([A-Za-z]+)\??\}/g)].map((m) => m[1] as string);
      const takesBody = e.method !== 'GET' && e.method !== 'HEAD';
      const isState = e.path.includes('/state/{eventType}');
      const isSend = e.path.includes('/send/{eventType}');
      const requiredQuery = (req?.query ?? [])
        .filter((p) => p.required)
        .map((p) => `${p.name}=${enc(String(p.example ?? p.enum?.[0] ?? 'x'))}`);
      const baseQuery = requiredQuery.length ? `?${requiredQuery.join('&')}` : '';
      let n = 0;
      const ownValues = () => {
        const values = own();
        values.txnId = `fuzz-${++txn}`;
        if (isState) {
          values.eventType = STATE_TYPES[(index + n++) % STATE_TYPES.length] as string;
          values.stateKey = values.eventType === 'm.room.member' ? w.carol.userId : '';
        } else if (isSend) {
          values.eventType = SEND_TYPES[(index + n++) % SEND_TYPES.length] as string;
        }
        return values;
      };
      const plain = (values: Record<string, string>) =>
        takesBody ? JSON.stringify(exampleFor(e, req, values, true)) : undefined;
      const cases: Case[] = [];
      const add = (c: Omit<Case, 'values' | 'query' | 'body'> & Partial<Case>) => {
        const values = c.values ?? ownValues();
        cases.push({ query: baseQuery, body: plain(values), ...c, values });
      };

      // Who is asking.
      add({
        kind: 'no token',
        actor: 'none',
        ...(e.auth === 'required' ? { errcode: 'M_MISSING_TOKEN', status: 401 } : {}),
      });
      add({
        kind: 'unknown token',
        actor: 'unknown',
        ...(e.auth !== 'none' ? { errcode: 'M_UNKNOWN_TOKEN', status: 401 } : {}),
      });
      add({
        kind: 'unknown query token',
        actor: 'none',
        query: `${baseQuery ? `${baseQuery}&` : '?'}access_token=nobody`,
        ...(e.auth !== 'none' ? { errcode: 'M_UNKNOWN_TOKEN', status: 401 } : {}),
      });
      add({
        kind: 'malformed Authorization',
        actor: { header: index % 2 ? 'Bearer' : 'Basic YTpi' },
        ...(e.auth === 'required' ? { status: 401 } : {}),
      });
      // The body, whole.
      if (takesBody) {
        for (const b of BODY_CASES) {
          add({
            kind: `body: ${b.name}`,
            actor: 'bob',
            // Past this endpoint's own limit (some take more than the default 64 KiB).
            body:
              b.name === 'too large' && e.maxBodyBytes !== undefined
                ? JSON.stringify({ k: 'a'.repeat(e.maxBodyBytes + 6 * 1024) })
                : b.body,
            ...(e.body && b.errcode ? { errcode: b.errcode, ...(b.status ? { status: b.status } : {}) } : {}),
          });
        }
        for (const body of fc.sample(hostileBody, { numRuns: 3 * SCALE, seed: 1000 + index + SEED }))
          add({ kind: 'body: generated', actor: 'bob', body: body ?? undefined });
        // Every field, the wrong type (from the spec's schema and example); for events, the
        // content of each event type in turn.
        const kinds = isState ? STATE_TYPES : isSend ? SEND_TYPES : [undefined];
        const cap = Math.max(2, Math.ceil((12 * SCALE) / kinds.length));
        for (const [k, eventType] of kinds.entries()) {
          const values = ownValues();
          if (eventType !== undefined) {
            values.eventType = eventType;
            values.stateKey = eventType === 'm.room.member' ? w.carol.userId : '';
          }
          const example = exampleFor(e, req, values, true);
          const fields = new Map<string, readonly string[]>();
          if (eventType === undefined) for (const p of req?.properties ?? []) fields.set(p.name, p.types);
          for (const key of Object.keys(example)) if (!fields.has(key)) fields.set(key, []);
          const mutations: { at: string[]; value: unknown }[] = [];
          for (const [field, types] of fields) {
            for (const value of wrongValues(types, example[field])) mutations.push({ at: [field], value });
            for (const value of fc.sample(fc.jsonValue({ maxDepth: 3 }), {
              numRuns: SCALE - 1,
              seed: index * 7919 + k + SEED,
            }))
              mutations.push({ at: [field], value });
          }
          // Nested fields of the example, one level down (identifier.user, content.body …).
          for (const [field, inner] of Object.entries(example)) {
            if (inner && typeof inner === 'object' && !Array.isArray(inner)) {
              for (const [key, v] of Object.entries(inner))
                mutations.push({ at: [field, key], value: wrongValues([], v)[0] });
            }
          }
          const step = Math.max(1, Math.ceil(mutations.length / cap));
          for (let i = (index + k) % step; i < mutations.length; i += step) {
            const { at, value } = mutations[i] as { at: string[]; value: unknown };
            const body = structuredClone(example);
            if (at.length === 1) body[at[0] as string] = value;
            else (body[at[0] as string] as Record<string, unknown>)[at[1] as string] = value;
            add({
              kind: `wrong type: ${eventType ? `${eventType} ` : ''}${at.join('.')}`,
              actor: 'bob',
              values,
              body: JSON.stringify(body),
            });
          }
        }
      }
      // Query parameters, one garbage value at a time.
      const queryCases: string[] = [];
      for (const p of req?.query ?? []) {
        for (const bad of badQueryValues(p.name, p.types, p.enum !== undefined, w.realTokens)) {
          const others = requiredQuery.filter((q) => !q.startsWith(`${p.name}=`));
          queryCases.push(`?${[...others, `${p.name}=${enc(bad)}`].join('&')}`);
        }
      }
      const qStep = Math.max(1, Math.ceil(queryCases.length / (8 * SCALE)));
      for (let i = 0; i < queryCases.length; i += qStep)
        add({ kind: `query ${queryCases[i]}`, actor: 'bob', query: queryCases[i] });
      // Invalid identifiers (and valid ones naming nothing) in each path parameter.
      const pathCases: { param: string; value: string }[] = [];
      for (const param of params)
        for (const value of BAD_IDS[idKind(param)] ?? []) pathCases.push({ param, value });
      const pStep = Math.max(1, Math.ceil(pathCases.length / (9 * SCALE)));
      for (let i = index % pStep; i < pathCases.length; i += pStep) {
        const { param, value } = pathCases[i] as { param: string; value: string };
        const values = { ...ownValues(), [param]: value };
        add({
          kind: `path ${param}=${JSON.stringify(value.slice(0, 40))}`,
          actor: 'bob',
          values,
          mustFail: syntacticallyInvalid(idKind(param), value),
        });
      }
      // Alice's things, as Bob: her private room and data, and the room they share.
      if (params.length > 0 || takesBody) {
        for (const [ctxName, values] of [
          ['private', foreignPrivate()],
          ['shared', foreignShared()],
        ] as const) {
          const touchesPrivate =
            ctxName === 'private' &&
            !PUBLIC_ABOUT_OTHERS.has(`${e.method} ${e.path}`) &&
            ['userId', 'roomId', 'roomIdOrAlias', 'eventId', 'deviceId', 'filterId'].some((p) =>
              params.includes(p),
            );
          const body = takesBody ? JSON.stringify(exampleFor(e, req, values, false)) : undefined;
          add({ kind: `Alice's (${ctxName})`, actor: 'bob', values, body, mustFail: touchesPrivate });
          if (takesBody)
            add({
              kind: `Alice's (${ctxName}), empty body`,
              actor: 'bob',
              values,
              body: '{}',
              mustFail: touchesPrivate,
            });
        }
      }
      return cases;
    }

    async function send(e: Endpoint, template: string, c: Case): Promise<void> {
      const path = fillTemplate(template, (name) => c.values[name] ?? 'x') + c.query;
      const headers: Record<string, string> = {};
      if (c.actor === 'bob') headers.authorization = `Bearer ${w.bob.accessToken}`;
      else if (c.actor === 'unknown') headers.authorization = 'Bearer nobody-knows-this-token';
      else if (typeof c.actor === 'object') headers.authorization = c.actor.header;
      if (c.body !== undefined) headers['content-type'] = 'application/json';
      const label = `${e.method} ${path.slice(0, 160)} [${c.kind}]`;
      const before = writes.count;
      const errorsBefore = errors.length;
      requests++;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const answer = await Promise.race([
        (async () => {
          const res = await w.hs.fetch(
            new Request(ORIGIN + path, { method: e.method, headers, body: c.body ?? null }),
          );
          const text = await res.clone().text();
          return { res, text };
        })(),
        new Promise<'timeout'>((resolve) => {
          timer = setTimeout(() => resolve('timeout'), REQUEST_BOUND_MS);
        }),
      ]);
      clearTimeout(timer);
      if (answer === 'timeout') {
        problems.push(`${label}: no answer within ${REQUEST_BOUND_MS} ms`);
        return;
      }
      let status = answer.res.status;
      let body: Record<string, unknown> | undefined;
      try {
        const checked = await checkMatrixResponse(answer.res, e.method);
        status = checked.status;
        body = checked.body;
      } catch (err) {
        problems.push(`${label}: ${(err as Error).message.slice(0, 400)}`);
      }
      if (LOG_FILE) log.push(`${status} ${label} ${answer.text.slice(0, 150)}`);
      statuses.set(
        `${status} ${body?.errcode ?? ''}`,
        (statuses.get(`${status} ${body?.errcode ?? ''}`) ?? 0) + 1,
      );
      if (errors.length > errorsBefore)
        problems.push(`${label}: logged ${errors.slice(errorsBefore).join('; ').slice(0, 400)}`);
      if (c.errcode !== undefined && body?.errcode !== c.errcode)
        problems.push(`${label}: expected ${c.errcode}, got ${status} ${answer.text.slice(0, 200)}`);
      if (c.status !== undefined && status !== c.status)
        problems.push(`${label}: expected status ${c.status}, got ${status} ${answer.text.slice(0, 200)}`);
      if (c.mustFail && status < 400)
        problems.push(`${label}: must be refused, got ${status} ${answer.text.slice(0, 200)}`);
      if (answer.text.includes(SECRET))
        problems.push(`${label}: answer shows Alice's private data: ${answer.text.slice(0, 300)}`);
      if (writes.count === before) return;
      // Something wrote: compare what can be seen.
      const after = await dump(w);
      if (status >= 400) {
        const changed = diffKeys(snapshot, after);
        if (changed.length > 0)
          problems.push(
            `${label}: refused (${status}) but changed the store: ${changed.join('; ').slice(0, 600)}`,
          );
      }
      const aliceChanged = diffKeys(alicePart(snapshot, w), alicePart(after, w));
      if (aliceChanged.length > 0)
        problems.push(`${label}: changed Alice's data: ${aliceChanged.join('; ').slice(0, 600)}`);
      if (status < 400) await repair();
      snapshot = status < 400 ? await dump(w) : after;
    }

    const perEndpoint: number[] = [];
    for (const [index, e] of endpoints.entries()) {
      const templates = fullPaths(e);
      const cases = casesFor(e, index);
      perEndpoint.push(cases.length);
      for (const [i, c] of cases.entries()) await send(e, templates[i % templates.length] as string, c);
      // Belt and braces: the whole dump, whatever the write counter said.
      const now = await dump(w);
      const drift = diffKeys(snapshot, now);
      if (drift.length > 0)
        problems.push(
          `${e.method} ${e.path}: the store changed without a counted write: ${drift.join('; ').slice(0, 600)}`,
        );
      snapshot = now;
    }

    // Random requests near and around every endpoint (the router fuzz's generator), with Bob's
    // real token standing in for the generator's.
    await fc.assert(
      fc.asyncProperty(hostileRequest(endpoints), async (r) => {
        const token = w.bob.accessToken;
        const fixed = {
          ...r,
          auth: r.auth === 'Bearer alice-token' ? `Bearer ${token}` : r.auth,
          path: r.path.replace('access_token=alice-token', `access_token=${token}`),
        };
        const before = errors.length;
        const wrote = writes.count;
        const res = await w.hs.fetch(toRequest(ORIGIN, fixed));
        await checkMatrixResponse(res, r.method);
        requests++;
        expect(errors.slice(before)).toEqual([]);
        if (writes.count > wrote) await repair();
      }),
      { numRuns: 300 * SCALE, seed: 4 + SEED },
    );

    if (LOG_FILE) writeFileSync(LOG_FILE, log.join('\n'));
    console.info(
      `homeserver fuzz: ${endpoints.length} endpoints, ${perEndpoint.reduce((a, b) => a + b, 0)} targeted requests ` +
        `(${Math.min(...perEndpoint)}–${Math.max(...perEndpoint)} per endpoint) + ${300 * SCALE} generated; ${requests} in all; ` +
        `answers: ${[...statuses]
          .sort()
          .map(([k, n]) => `${k}×${n}`)
          .join(', ')}`,
    );
    expect(problems).toEqual([]);
    expect(errors).toEqual([]);
    // Not vacuous: the requests reached handlers, which refused and accepted on their own terms.
    for (const key of [
      '200 ',
      '400 M_BAD_JSON',
      '400 M_NOT_JSON',
      '401 M_MISSING_TOKEN',
      '401 M_UNKNOWN_TOKEN',
      '403 M_FORBIDDEN',
      '404 M_NOT_FOUND',
      '413 M_TOO_LARGE',
    ]) {
      expect(statuses.get(key) ?? 0, key).toBeGreaterThan(10);
    }
    expect(endpoints.length).toBeGreaterThan(80);
    expect(Math.min(...perEndpoint)).toBeGreaterThanOrEqual(4);
  }, 300_000);

  it('answers every method on every endpoint path with a Matrix error or the endpoint, and changes nothing it refused', async () => {
    const endpoints = clientEndpoints(w.services);
    const values: Record<string, string> = {
      ...bobsValues(w),
      eventType: 'org.example.fuzz',
      txnId: 'methods',
    };
    // Every path once, with the methods the table declares on it.
    const paths = new Map<string, Set<string>>();
    for (const e of endpoints) {
      for (const template of fullPaths(e)) {
        const path = fillTemplate(template, (name) => values[name] ?? 'x');
        paths.set(path, (paths.get(path) ?? new Set()).add(e.method));
      }
    }
    // Fetch refuses to build a Request for CONNECT, TRACE and TRACK: hosts pass them beside a
    // bodiless stand-in (ConnectionInfo.method), as the Node host does.
    const forbidden = new Set(['CONNECT', 'TRACE', 'TRACK']);
    const methods = [
      'GET',
      'HEAD',
      'POST',
      'PUT',
      'DELETE',
      'PATCH',
      'OPTIONS',
      'QUERY',
      'PROPFIND',
      'FOO',
      ...forbidden,
    ];
    const hostile = ['{"\\ud800":1}', '{"a":1e999}', deep(400), '{', '{"\\\\":1,"\\n":2}'];
    const problems: string[] = [];
    let n = 0;
    let snapshot = await dump(w);
    for (const [path, declared] of paths) {
      for (const method of methods) {
        const body =
          method === 'GET' || method === 'HEAD' || forbidden.has(method)
            ? null
            : hostile[n++ % hostile.length];
        const request = new Request(ORIGIN + path, {
          method: forbidden.has(method) ? 'GET' : method,
          headers: { authorization: `Bearer ${w.bob.accessToken}`, 'content-type': 'application/json' },
          body,
        });
        const wrote = writes.count;
        const label = `${method} ${path} ${body ?? ''}`;
        const res = await w.hs.fetch(request, forbidden.has(method) ? { method } : undefined);
        if (res.status >= 500) problems.push(`${label}: ${res.status}`);
        if (method !== 'HEAD' && method !== 'OPTIONS') {
          try {
            await checkMatrixResponse(res, method);
          } catch (err) {
            problems.push(`${label}: ${(err as Error).message.slice(0, 200)}`);
          }
        }
        if (!declared.has(method) && method !== 'OPTIONS' && method !== 'HEAD') {
          if (res.status !== 405) problems.push(`${label}: expected 405, got ${res.status}`);
          const allow = (res.headers.get('allow') ?? '').split(/,\s*/);
          for (const m of declared) if (!allow.includes(m)) problems.push(`${label}: Allow lacks ${m}`);
        }
        if (writes.count !== wrote) {
          const after = await dump(w);
          if (res.status >= 400 && diffKeys(snapshot, after).length > 0)
            problems.push(`${label}: refused (${res.status}) but changed the store`);
          if (res.status < 400) await repair();
          snapshot = await dump(w);
        }
      }
    }
    expect(problems).toEqual([]);
    expect(paths.size).toBeGreaterThan(80);
  }, 300_000);

  it('refuses over-long URLs with 414 M_TOO_LARGE', async () => {
    const res = await w.hs.fetch(new Request(`${ORIGIN}/_matrix/client/v3/profile/${'a'.repeat(100_000)}`));
    expect(res.status).toBe(414);
    expect((await checkMatrixResponse(res, 'GET')).body?.errcode).toBe('M_TOO_LARGE');
  });

  it('treats `limit` alike on every endpoint that takes it: refused unless a whole number ≥ 0, clamped when huge', async () => {
    const v3 = '/_matrix/client/v3';
    const enc = encodeURIComponent;
    const withLimit = [
      `${v3}/rooms/${enc(w.r3)}/messages?dir=b&limit=`,
      `${v3}/rooms/${enc(w.r3)}/context/${enc(w.e3)}?limit=`,
      `${v3}/publicRooms?limit=`,
      `${v3}/initialSync?limit=`,
      `${v3}/notifications?limit=`,
      `/_matrix/client/v1/rooms/${enc(w.r3)}/relations/${enc(w.e3)}?limit=`,
      `/_matrix/client/v1/rooms/${enc(w.r3)}/relations/${enc(w.e3)}/m.thread?limit=`,
      `/_matrix/client/v1/rooms/${enc(w.r3)}/relations/${enc(w.e3)}/m.thread/m.room.message?limit=`,
    ];
    // threads_list.yaml and space_hierarchy.yaml: "an integer greater than zero".
    const positiveLimit = [
      `/_matrix/client/v1/rooms/${enc(w.r3)}/threads?limit=`,
      `/_matrix/client/v1/rooms/${enc(w.r3)}/hierarchy?limit=`,
    ];
    // Every implemented spec operation with a `limit` query parameter is in the list above.
    const implemented = new Set(
      clientEndpoints(w.services).map((e) => routeKey(e.method, fullPaths(e)[0] ?? e.path)),
    );
    const specLimited = [...readSpecRequests()]
      .filter(([key, req]) => implemented.has(key) && req.query.some((q) => q.name === 'limit'))
      .map(([key]) => key);
    expect(specLimited.sort()).toEqual(
      [
        'GET /initialSync',
        'GET /publicRooms',
        'GET /rooms/{}/context/{}',
        'GET /rooms/{}/messages',
        'GET /notifications',
        'GET /rooms/{}/relations/{}',
        'GET /rooms/{}/relations/{}/{}',
        'GET /rooms/{}/relations/{}/{}/{}',
        'GET /rooms/{}/threads',
        'GET /rooms/{}/hierarchy',
      ].sort(),
    );
    for (const base of positiveLimit) {
      for (const bad of ['0', '-1', 'abc', '1.5', `${2 ** 60}`]) {
        const r = await w.hs.call('GET', base + enc(bad), { token: w.bob.accessToken });
        expect([r.status, r.body.errcode], `${base}${bad}`).toEqual([400, 'M_INVALID_PARAM']);
      }
      for (const good of ['1', '1000000000']) {
        const r = await w.hs.call('GET', base + good, { token: w.bob.accessToken });
        expect(r.status, `${base}${good}: ${JSON.stringify(r.body)}`).toBe(200);
      }
    }
    for (const base of withLimit) {
      for (const bad of ['-1', 'abc', '1e9', '1.5', '', '0x10', `${2 ** 60}`]) {
        const r = await w.hs.call('GET', base + enc(bad), { token: w.bob.accessToken });
        expect(r.status, `${base}${bad}`).toBe(400);
        expect(r.body.errcode, `${base}${bad}`).toBe('M_INVALID_PARAM');
      }
      for (const good of ['0', '1', '1000000000']) {
        const r = await w.hs.call('GET', base + good, { token: w.bob.accessToken });
        expect(r.status, `${base}${good}: ${JSON.stringify(r.body)}`).toBe(200);
      }
    }
    // Clamped, not obeyed: a page of a billion is the endpoint's maximum.
    const page = await w.hs.call('GET', `${v3}/rooms/${enc(w.r3)}/messages?dir=b&limit=1000000000`, {
      token: w.bob.accessToken,
    });
    expect((page.body.chunk as unknown[]).length).toBeLessThanOrEqual(1000);
  });

  it("answers generated sliding sync requests well, showing Bob nothing of Alice's private room", async () => {
    const path = '/_matrix/client/unstable/org.matrix.simplified_msc3575/sync';
    const rooms = fc.constantFrom(w.r1, w.r2, w.r3, '!nope:fuzz.localhost', 'not a room', '');
    const text = fc.oneof(
      fc.constantFrom('*', '$LAZY', '$ME', '', 'm.room.member', 'm.room.name'),
      fc.string(),
    );
    // Mostly good values, so requests get past validation into the service; now and then not.
    const rarely = <T>(good: fc.Arbitrary<T>, bad: fc.Arbitrary<unknown>) =>
      fc.oneof({ arbitrary: good, weight: 15 }, { arbitrary: bad, weight: 1 });
    const int = rarely(fc.integer({ min: 0, max: 30 }), fc.constantFrom(-1, 2 ** 53, 1e300, 0.5, '3'));
    const range = rarely(
      fc.tuple(fc.nat(40), fc.nat(40)).map(([a, b]) => [Math.min(a, b), Math.max(a, b)]),
      fc.tuple(int, int),
    );
    const config = fc.record(
      {
        timeline_limit: int,
        required_state: fc.oneof(
          fc.array(fc.tuple(text, text), { maxLength: 4 }),
          fc.record(
            { include: fc.array(fc.record({ type: text, state_key: text }, { requiredKeys: [] })) },
            { requiredKeys: [] },
          ),
          fc.jsonValue({ maxDepth: 2 }),
        ),
      },
      { requiredKeys: [] },
    );
    const list = fc.record(
      {
        ranges: rarely(fc.array(range, { maxLength: 3 }), fc.jsonValue({ maxDepth: 2 })),
        range,
        timeline_limit: int,
        required_state: fc.array(fc.tuple(text, text), { maxLength: 3 }),
        filters: fc.record(
          {
            is_dm: fc.boolean(),
            is_encrypted: fc.boolean(),
            is_invite: fc.boolean(),
            spaces: fc.array(rooms, { maxLength: 2 }),
            room_types: fc.array(fc.oneof(fc.constant(null), text), { maxLength: 2 }),
            not_room_types: fc.array(fc.oneof(fc.constant(null), text), { maxLength: 2 }),
            tags: fc.array(text, { maxLength: 2 }),
          },
          { requiredKeys: [] },
        ),
      },
      { requiredKeys: [] },
    );
    const extension = fc.record(
      { enabled: fc.boolean(), since: text, limit: int, lists: fc.array(text), rooms: fc.array(rooms) },
      { requiredKeys: [] },
    );
    const body = fc.record(
      {
        conn_id: fc.oneof(text, fc.constantFrom('a', 'b')),
        lists: fc.dictionary(fc.constantFrom('all', 'dms', 'x'), list, { maxKeys: 3 }),
        room_subscriptions: fc.dictionary(rooms, config, { maxKeys: 3 }),
        unsubscribe_rooms: fc.array(rooms, { maxLength: 2 }),
        extensions: fc.dictionary(
          fc.constantFrom('to_device', 'e2ee', 'account_data', 'receipts', 'typing', 'other'),
          extension,
        ),
        txn_id: text,
      },
      { requiredKeys: [] },
    );
    let lastPos: string | undefined;
    const counts = { ok: 0, refused: 0, withRooms: 0 };
    const posValue = fc.constantFrom<'last' | 'none' | string>(
      'last',
      'last',
      'none',
      'garbage',
      '1.s1_0_0_0_0_0_0',
      '9999.s99999_0_0_0_0_0_0',
      '0.s-1_0',
    );
    const problems: string[] = [];
    await fc.assert(
      fc.asyncProperty(body, posValue, fc.constantFrom(0, 50), async (b, p, timeout) => {
        const pos = p === 'last' ? lastPos : p === 'none' ? undefined : p;
        const qs = new URLSearchParams();
        if (pos !== undefined) qs.set('pos', pos);
        qs.set('timeout', String(timeout));
        const before = errors.length;
        const res = await w.hs.fetch(
          new Request(`${ORIGIN}${path}?${qs}`, {
            method: 'POST',
            headers: { authorization: `Bearer ${w.bob.accessToken}`, 'content-type': 'application/json' },
            body: JSON.stringify(b),
          }),
        );
        const text = await res.clone().text();
        const checked = await checkMatrixResponse(res, 'POST');
        if (checked.status >= 500 || ![200, 400].includes(checked.status))
          problems.push(`${checked.status} for ${JSON.stringify(b).slice(0, 300)}: ${text.slice(0, 200)}`);
        if (text.includes(SECRET)) problems.push(`Alice's private data shown: ${text.slice(0, 300)}`);
        if (checked.status === 200) {
          counts.ok++;
          const answer = checked.body as { pos?: unknown; rooms?: Record<string, unknown> };
          if (Object.keys(answer.rooms ?? {}).length > 0) counts.withRooms++;
          if (typeof answer.pos !== 'string') problems.push(`no pos: ${text.slice(0, 200)}`);
          else lastPos = answer.pos;
          if (answer.rooms && w.r1 in answer.rooms)
            problems.push(`Alice's private room sent to Bob: ${text.slice(0, 200)}`);
        } else counts.refused++;
        if (errors.length > before) problems.push(`logged ${errors.slice(before).join('; ').slice(0, 300)}`);
      }),
      { numRuns: 150 * SCALE, seed: 11 + SEED },
    );
    expect(problems).toEqual([]);
    // Not vacuous: requests got through to answers with rooms, and others were refused.
    expect(counts.withRooms, JSON.stringify(counts)).toBeGreaterThan(10);
    expect(counts.refused, JSON.stringify(counts)).toBeGreaterThan(10);
  }, 120_000);

  it('refuses lone surrogates alike where they were once stored, changing nothing', async () => {
    const v3 = '/_matrix/client/v3';
    const enc = encodeURIComponent;
    const before = await dump(w);
    const cases: Array<[string, string, string]> = [
      ['PUT', `${v3}/profile/${enc(w.bob.userId)}/displayname`, '{"displayname":"\\ud800d"}'],
      ['PUT', `${v3}/user/${enc(w.bob.userId)}/account_data/org.example.s`, '{"x":"\\udfff"}'],
      ['PUT', `${v3}/devices/${enc(w.bob.deviceId)}`, '{"display_name":"\\ud83d"}'],
      ['PUT', `${v3}/pushrules/global/content/lone`, '{"pattern":"\\ud800","actions":["notify"]}'],
      ['PUT', `${v3}/rooms/${enc(w.r3)}/send/m.room.message/lone1`, '{"msgtype":"m.text","body":"\\ud800"}'],
    ];
    for (const [method, path, body] of cases) {
      const res = await w.hs.fetch(
        new Request(ORIGIN + path, {
          method,
          headers: { authorization: `Bearer ${w.bob.accessToken}`, 'content-type': 'application/json' },
          body,
        }),
      );
      const checked = await checkMatrixResponse(res, method);
      expect(checked.status, path).toBe(400);
      expect(checked.body?.errcode, path).toBe('M_BAD_JSON');
    }
    expect(diffKeys(before, await dump(w))).toEqual([]);
  });
});
