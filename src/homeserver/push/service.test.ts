/**
 * The push service on a real (fake-indexeddb) store: rule storage and ordering, and
 * `notificationsFor` over rooms written straight into the store (the store checks no hashes
 * or signatures, so plain PDUs stand in for built ones), plus one run through the rooms
 * pipeline to see the push actions land with the event.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { JsonObject } from '../../core/canonical-json.ts';
import type { IdentifiedPdu } from '../../core/pdu.ts';
import type { Store } from '../../storage/store.ts';
import { createTestServices, type TestServices } from '../testing.ts';
import type { PushService } from './service.ts';

const SERVER = 'test.localhost';
const ALICE = `@alice:${SERVER}`;
const BOB = `@bob:${SERVER}`;
const CAROL = `@carol:${SERVER}`;
const REMOTE = '@rita:remote.example';

let hs: TestServices;
let services: TestServices['internals'];
let push: PushService;
let store: Store;

beforeEach(async () => {
  hs = await createTestServices({ serverName: SERVER });
  services = hs.internals;
  push = services.push;
  store = hs.store;
});
afterEach(async () => {
  await hs.close();
});

/** A linear room written directly into the store. */
class StoreRoom {
  readonly roomId: string;
  private last: string | null = null;
  private depth = 0;
  private n = 0;
  constructor(roomId: string) {
    this.roomId = roomId;
  }

  event(sender: string, type: string, content: JsonObject, stateKey?: string): IdentifiedPdu {
    this.n += 1;
    return {
      event_id: `$${this.roomId.slice(1, 6)}-${this.n}`,
      room_id: this.roomId,
      sender,
      type,
      ...(stateKey === undefined ? {} : { state_key: stateKey }),
      content,
      prev_events: this.last ? [this.last] : [],
      auth_events: [],
      depth: this.depth + 1,
      origin_server_ts: 1_700_000_000_000 + this.n,
      hashes: { sha256: 'placeholder' },
      signatures: {},
    };
  }

  async persist(event: IdentifiedPdu): Promise<void> {
    await store.rooms.persistEvents([
      { event, stateBefore: this.last ? { afterEvent: this.last } : { state: new Map() } },
    ]);
    this.last = event.event_id;
    this.depth += 1;
  }

  static async create(
    roomId: string,
    members: readonly (string | { userId: string; displayname: string })[],
    options: { version?: string; powerLevels?: JsonObject } = {},
  ): Promise<StoreRoom> {
    const room = new StoreRoom(roomId);
    const creator = typeof members[0] === 'string' ? members[0] : (members[0]?.userId as string);
    await room.persist(
      room.event(creator, 'm.room.create', { room_version: options.version ?? '11', creator }, ''),
    );
    for (const member of members) {
      const userId = typeof member === 'string' ? member : member.userId;
      const content: JsonObject = { membership: 'join' };
      if (typeof member !== 'string') content.displayname = member.displayname;
      await room.persist(room.event(userId, 'm.room.member', content, userId));
    }
    if (options.powerLevels)
      await room.persist(room.event(creator, 'm.room.power_levels', options.powerLevels, ''));
    return room;
  }
}

const text = (body: string, extra: JsonObject = {}): JsonObject => ({ msgtype: 'm.text', body, ...extra });
const byUser = (list: { userId: string; highlight: boolean }[]) =>
  Object.fromEntries(list.map((n) => [n.userId, n.highlight]));

describe('notificationsFor', () => {
  it('notifies every local joined member except the sender, never remote members', async () => {
    const room = await StoreRoom.create('!group:test.localhost', [ALICE, BOB, CAROL, REMOTE]);
    const notified = await push.notificationsFor(
      room.event(ALICE, 'm.room.message', text('hi all')),
      room.roomId,
    );
    expect(byUser(notified)).toEqual({ [BOB]: false, [CAROL]: false });
  });

  it('highlights the mentioned user only', async () => {
    const room = await StoreRoom.create('!group:test.localhost', [ALICE, BOB, CAROL]);
    const event = room.event(ALICE, 'm.room.message', text('bob?', { 'm.mentions': { user_ids: [BOB] } }));
    expect(byUser(await push.notificationsFor(event, room.roomId))).toEqual({ [BOB]: true, [CAROL]: false });
  });

  it('counts remote members for one-to-one rooms', async () => {
    const room = await StoreRoom.create('!dm:test.localhost', [REMOTE, BOB]);
    const encrypted = room.event(REMOTE, 'm.room.encrypted', {
      algorithm: 'm.megolm.v1.aes-sha2',
      ciphertext: 'x',
    });
    expect(await push.notificationsFor(encrypted, room.roomId)).toEqual([{ userId: BOB, highlight: false }]);
    // A notice from the other side stays silent even one-to-one.
    const notice = room.event(REMOTE, 'm.room.message', { msgtype: 'm.notice', body: 'bot' });
    expect(await push.notificationsFor(notice, room.roomId)).toEqual([]);
  });

  it('never notifies about an ignored sender', async () => {
    const room = await StoreRoom.create('!group:test.localhost', [ALICE, BOB, CAROL]);
    await store.userData.setAccountData(BOB, 'm.ignored_user_list', { ignored_users: { [ALICE]: {} } });
    const event = room.event(
      ALICE,
      'm.room.message',
      text('hey', { 'm.mentions': { user_ids: [BOB, CAROL] } }),
    );
    expect(byUser(await push.notificationsFor(event, room.roomId))).toEqual({ [CAROL]: true });
  });

  it('tells a local invitee about the invite, but not a remote one', async () => {
    const room = await StoreRoom.create('!group:test.localhost', [ALICE, BOB, CAROL]);
    const invite = (target: string) => room.event(ALICE, 'm.room.member', { membership: 'invite' }, target);
    const local = await push.notificationsFor(invite('@dave:test.localhost'), room.roomId);
    expect(local).toEqual([{ userId: '@dave:test.localhost', highlight: false }]);
    expect(await push.notificationsFor(invite('@erin:remote.example'), room.roomId)).toEqual([]);
  });

  it('room mentions need the notifications.room power level of the sender', async () => {
    const powerLevels = { users: { [ALICE]: 100, [CAROL]: 20 }, users_default: 0 };
    const room = await StoreRoom.create('!group:test.localhost', [ALICE, BOB, CAROL], { powerLevels });
    const mention = (sender: string) =>
      room.event(sender, 'm.room.message', text('@room', { 'm.mentions': { room: true } }));
    expect(byUser(await push.notificationsFor(mention(ALICE), room.roomId))).toEqual({
      [BOB]: true,
      [CAROL]: true,
    });
    expect(byUser(await push.notificationsFor(mention(CAROL), room.roomId))).toEqual({
      [ALICE]: false,
      [BOB]: false,
    });
    await room.persist(
      room.event(ALICE, 'm.room.power_levels', { ...powerLevels, notifications: { room: 20 } }, ''),
    );
    expect(byUser(await push.notificationsFor(mention(CAROL), room.roomId))).toEqual({
      [ALICE]: true,
      [BOB]: true,
    });
  });

  it('v12 room creators have the power to mention the room whatever the power levels say', async () => {
    const room = await StoreRoom.create('!v12:test.localhost', [ALICE, BOB], {
      version: '12',
      powerLevels: { users: {}, notifications: { room: 1000 } },
    });
    const event = room.event(ALICE, 'm.room.message', text('@room', { 'm.mentions': { room: true } }));
    expect(await push.notificationsFor(event, room.roomId)).toEqual([{ userId: BOB, highlight: true }]);
  });

  it('reads the display name of the user in the room for contains_display_name rules', async () => {
    const room = await StoreRoom.create('!group:test.localhost', [
      ALICE,
      { userId: BOB, displayname: 'Bobby' },
      CAROL,
    ]);
    await push.putRule(BOB, 'override', 'my-name', {
      conditions: [{ kind: 'contains_display_name' }],
      actions: ['notify', { set_tweak: 'highlight' }],
    });
    const event = room.event(ALICE, 'm.room.message', text('ask bobby, he knows'));
    expect(byUser(await push.notificationsFor(event, room.roomId))).toEqual({ [BOB]: true, [CAROL]: false });
  });

  it('follows each user’s own rules: a muted room, the master switch', async () => {
    const room = await StoreRoom.create('!group:test.localhost', [ALICE, BOB, CAROL]);
    await push.putRule(BOB, 'room', room.roomId, { actions: [] });
    await push.setEnabled(CAROL, 'override', '.m.rule.master', true);
    expect(
      await push.notificationsFor(room.event(ALICE, 'm.room.message', text('anyone?')), room.roomId),
    ).toEqual([]);
    await push.setEnabled(CAROL, 'override', '.m.rule.master', false);
    expect(
      await push.notificationsFor(room.event(ALICE, 'm.room.message', text('anyone?')), room.roomId),
    ).toEqual([{ userId: CAROL, highlight: false }]);
  });

  it('lands with the event when it goes through the rooms pipeline (unread counts)', async () => {
    const { roomId } = await services.rooms.createRoom(ALICE, { preset: 'public_chat' });
    await services.rooms.join(BOB, roomId);
    const before = await store.positions();
    await services.rooms.sendEvent({
      sender: ALICE,
      roomId,
      type: 'm.room.message',
      content: text('hi', { 'm.mentions': { user_ids: [BOB] } }),
    });
    await services.rooms.sendEvent({ sender: ALICE, roomId, type: 'm.room.message', content: text('plain') });
    expect(await store.receipts.notificationCounts(BOB, roomId, before.events)).toEqual({
      notifications: 2,
      highlights: 1,
    });
    expect(await store.receipts.notificationCounts(ALICE, roomId, before.events)).toEqual({
      notifications: 0,
      highlights: 0,
    });
  });
});

describe('rule storage', () => {
  const ids = async (userId: string, kind: 'override' | 'content' | 'underride') =>
    (await push.rulesFor(userId)).global[kind].filter((r) => !r.default).map((r) => r.rule_id);

  it('puts a new rule on top of the user rules of its kind, and keeps a replaced rule in place', async () => {
    for (const id of ['a', 'b', 'c'])
      await push.putRule(ALICE, 'content', id, { pattern: id, actions: ['notify'] });
    expect(await ids(ALICE, 'content')).toEqual(['c', 'b', 'a']);
    await push.putRule(ALICE, 'content', 'b', { pattern: 'bee', actions: [] });
    expect(await ids(ALICE, 'content')).toEqual(['c', 'b', 'a']);
    expect(await push.getRule(ALICE, 'content', 'b')).toEqual({
      rule_id: 'b',
      default: false,
      enabled: true,
      actions: [],
      pattern: 'bee',
    });
  });

  it('places rules before and after others (before wins when both are given)', async () => {
    for (const id of ['a', 'b']) await push.putRule(ALICE, 'override', id, { conditions: [], actions: [] });
    // Now: b, a.
    await push.putRule(ALICE, 'override', 'x', { actions: [] }, { before: 'a' });
    expect(await ids(ALICE, 'override')).toEqual(['b', 'x', 'a']);
    await push.putRule(ALICE, 'override', 'y', { actions: [] }, { after: 'a' });
    expect(await ids(ALICE, 'override')).toEqual(['b', 'x', 'a', 'y']);
    await push.putRule(ALICE, 'override', 'z', { actions: [] }, { before: 'b' });
    expect(await ids(ALICE, 'override')).toEqual(['z', 'b', 'x', 'a', 'y']);
    await push.putRule(ALICE, 'override', 'w', { actions: [] }, { before: 'y', after: 'z' });
    expect(await ids(ALICE, 'override')).toEqual(['z', 'b', 'x', 'a', 'w', 'y']);
    // Moving an existing rule.
    await push.putRule(ALICE, 'override', 'z', { actions: [] }, { after: 'y' });
    expect(await ids(ALICE, 'override')).toEqual(['b', 'x', 'a', 'w', 'y', 'z']);
    // Every user override still sits below master and above the other defaults.
    const all = (await push.rulesFor(ALICE)).global.override.map((r) => r.rule_id);
    expect(all.slice(0, 8)).toEqual([
      '.m.rule.master',
      'b',
      'x',
      'a',
      'w',
      'y',
      'z',
      '.m.rule.suppress_notices',
    ]);
  });

  it('keeps the order when inserts into one gap use up the room between priorities', async () => {
    await push.putRule(ALICE, 'underride', 'top', { actions: [] });
    await push.putRule(ALICE, 'underride', 'bottom', { actions: [] }, { after: 'top' });
    const expected: string[] = [];
    // Always insert right below 'top': each insert halves the gap next to top's priority,
    // which a double can do only ~50 times before the kind must be renumbered.
    for (let i = 0; i < 70; i++) {
      await push.putRule(ALICE, 'underride', `r${i}`, { actions: [] }, { after: 'top' });
      expected.unshift(`r${i}`);
    }
    expect(await ids(ALICE, 'underride')).toEqual(['top', ...expected, 'bottom']);
    const priorities = (await store.userData.pushRules(ALICE)).rules.map((r) => r.priority);
    const gaps = priorities.slice(1).map((p, i) => (priorities[i] as number) - p);
    // Without renumbering the last gaps would be ~2^-42; after it they start again from whole steps.
    expect(Math.min(...gaps)).toBeGreaterThan(1e-6);
  });

  it('refuses to place a rule relative to a default rule, itself, or a missing rule', async () => {
    await push.putRule(ALICE, 'override', 'a', { actions: [] });
    await expect(
      push.putRule(ALICE, 'override', 'b', { actions: [] }, { before: '.m.rule.master' }),
    ).rejects.toMatchObject({
      errcode: 'M_INVALID_PARAM',
    });
    await expect(push.putRule(ALICE, 'override', 'a', { actions: [] }, { after: 'a' })).rejects.toMatchObject(
      { status: 400 },
    );
    await expect(
      push.putRule(ALICE, 'override', 'b', { actions: [] }, { after: 'nope' }),
    ).rejects.toMatchObject({ status: 400 });
    expect(await ids(ALICE, 'override')).toEqual(['a']);
  });

  it('keeps a replaced rule’s enabled state, and enables new rules', async () => {
    await push.putRule(ALICE, 'underride', 'u', { actions: ['notify'] });
    await push.setEnabled(ALICE, 'underride', 'u', false);
    await push.putRule(ALICE, 'underride', 'u', { actions: [] });
    expect(await push.getRule(ALICE, 'underride', 'u')).toMatchObject({ enabled: false, actions: [] });
  });

  it('changes actions and enabled of default rules without copying them, and refuses to delete them', async () => {
    await push.setActions(ALICE, 'underride', '.m.rule.message', [
      'notify',
      { set_tweak: 'sound', value: 'x' },
      'dont_notify',
    ]);
    await push.setEnabled(ALICE, 'override', '.m.rule.reaction', false);
    expect(await push.getRule(ALICE, 'underride', '.m.rule.message')).toMatchObject({
      default: true,
      actions: ['notify', { set_tweak: 'sound', value: 'x' }],
      conditions: [{ kind: 'event_match', key: 'type', pattern: 'm.room.message' }],
    });
    expect(await push.getRule(ALICE, 'override', '.m.rule.reaction')).toMatchObject({
      enabled: false,
      default: true,
    });
    await expect(push.deleteRule(ALICE, 'override', '.m.rule.reaction')).rejects.toMatchObject({
      status: 403,
      errcode: 'M_FORBIDDEN',
    });
    await expect(push.deleteRule(ALICE, 'override', 'missing')).rejects.toMatchObject({
      status: 404,
      errcode: 'M_NOT_FOUND',
    });
    // Bob's defaults are untouched.
    expect(await push.getRule(BOB, 'override', '.m.rule.reaction')).toMatchObject({ enabled: true });
  });

  it('a default rule of one kind is not found under another kind', async () => {
    await expect(push.getRule(ALICE, 'underride', '.m.rule.master')).rejects.toMatchObject({
      errcode: 'M_NOT_FOUND',
    });
    await expect(push.setEnabled(ALICE, 'content', '.m.rule.contains_user_name', true)).rejects.toMatchObject(
      { errcode: 'M_NOT_FOUND' },
    );
  });

  it('moves the account-data stream and wakes the user on every change', async () => {
    const start = (await push.rulesFor(ALICE)).stream;
    expect(start).toBe(0);
    const version = services.ctx.notifier.version;
    await push.putRule(ALICE, 'sender', REMOTE, { actions: [] });
    const afterPut = (await push.rulesFor(ALICE)).stream;
    expect(afterPut).toBeGreaterThan(start);
    expect((await store.positions()).accountData).toBe(afterPut);
    expect(services.ctx.notifier.version).toBeGreaterThan(version);
    await push.deleteRule(ALICE, 'sender', REMOTE);
    expect((await push.rulesFor(ALICE)).stream).toBeGreaterThan(afterPut);
    expect(await push.pushRulesContent(ALICE)).toEqual({ global: (await push.rulesFor(ALICE)).global });
  });
});
