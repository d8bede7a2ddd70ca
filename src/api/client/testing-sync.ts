/**
 * Shared set-up for the /sync tests: a test homeserver, users, and small wrappers that drive
 * the real endpoints (createRoom, send, membership, /sync) through `hs.call`.
 */
import { expect } from 'vitest';
import type { JsonObject } from '../../core/canonical-json.ts';
import type { HomeserverOptions } from '../../server.ts';
import { createTestHomeserver, type TestHomeserver } from '../../testing.ts';

export interface User {
  userId: string;
  deviceId: string;
  accessToken: string;
}

export type SyncBody = {
  next_batch: string;
  rooms: {
    join: Record<string, JoinedRoomBody>;
    invite: Record<string, { invite_state: { events: JsonObject[] } }>;
    leave: Record<string, JoinedRoomBody>;
    knock: Record<string, { knock_state: { events: JsonObject[] } }>;
  };
  presence: { events: JsonObject[] };
  account_data: { events: JsonObject[] };
  to_device: { events: JsonObject[] };
  device_lists: { changed: string[]; left: string[] };
  device_one_time_keys_count: Record<string, number>;
  device_unused_fallback_key_types: string[];
};

export interface JoinedRoomBody {
  summary?: Record<string, unknown>;
  state?: { events: ClientEvent[] };
  state_after?: { events: ClientEvent[] };
  'org.matrix.msc4222.state_after'?: { events: ClientEvent[] };
  timeline: { events: ClientEvent[]; limited: boolean; prev_batch?: string };
  ephemeral?: { events: JsonObject[] };
  account_data: { events: JsonObject[] };
  unread_notifications?: { notification_count: number; highlight_count: number };
  unread_thread_notifications?: Record<string, unknown>;
}

export interface ClientEvent {
  event_id: string;
  type: string;
  sender: string;
  state_key?: string;
  content: Record<string, unknown>;
  unsigned?: Record<string, unknown>;
  origin_server_ts: number;
  room_id?: string;
}

export class SyncHarness {
  readonly hs: TestHomeserver;
  constructor(hs: TestHomeserver) {
    this.hs = hs;
  }

  static async start(options: Partial<HomeserverOptions> = {}): Promise<SyncHarness> {
    return new SyncHarness(await createTestHomeserver(options));
  }

  user(localpart: string): Promise<User> {
    return this.hs.createUser(localpart);
  }

  async ok(method: string, path: string, user: User, body?: unknown): Promise<Record<string, unknown>> {
    const res = await this.hs.call(method, `/_matrix/client/v3${path}`, {
      token: user.accessToken,
      body: method === 'GET' ? undefined : (body ?? {}),
    });
    expect(res.status, `${method} ${path}: ${JSON.stringify(res.body)}`).toBe(200);
    return res.body;
  }

  async createRoom(user: User, body: JsonObject = {}): Promise<string> {
    return (await this.ok('POST', '/createRoom', user, body)).room_id as string;
  }

  private txn = 0;

  async send(user: User, roomId: string, body: string, extra: JsonObject = {}): Promise<string> {
    const path = `/rooms/${encodeURIComponent(roomId)}/send/m.room.message/txn${++this.txn}`;
    return (await this.ok('PUT', path, user, { msgtype: 'm.text', body, ...extra })).event_id as string;
  }

  async setState(
    user: User,
    roomId: string,
    type: string,
    content: JsonObject,
    stateKey = '',
  ): Promise<string> {
    const path = `/rooms/${encodeURIComponent(roomId)}/state/${type}/${encodeURIComponent(stateKey)}`;
    return (await this.ok('PUT', path, user, content)).event_id as string;
  }

  invite(user: User, roomId: string, target: User) {
    return this.ok('POST', `/rooms/${encodeURIComponent(roomId)}/invite`, user, { user_id: target.userId });
  }

  join(user: User, roomId: string) {
    return this.ok('POST', `/join/${encodeURIComponent(roomId)}`, user, {});
  }

  leave(user: User, roomId: string) {
    return this.ok('POST', `/rooms/${encodeURIComponent(roomId)}/leave`, user, {});
  }

  /** GET /sync with query parameters; asserts 200. */
  async sync(user: User, params: Record<string, string | number | boolean> = {}): Promise<SyncBody> {
    const res = await this.rawSync(user, params);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return res.body as unknown as SyncBody;
  }

  rawSync(user: User, params: Record<string, string | number | boolean> = {}) {
    const qs = new URLSearchParams(Object.entries(params).map(([k, v]) => [k, String(v)]));
    return this.hs.call('GET', `/_matrix/client/v3/sync?${qs}`, { token: user.accessToken });
  }

  close() {
    return this.hs.close();
  }
}

export const bodies = (events: readonly ClientEvent[]) =>
  events.filter((e) => e.type === 'm.room.message').map((e) => e.content.body);

export const stateKeys = (events: readonly ClientEvent[]) =>
  events.map((e) => `${e.type}|${e.state_key}`).sort();
