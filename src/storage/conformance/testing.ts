/**
 * What the conformance suite needs from a backend, and the helpers its tests share:
 * event builders, a fault-injecting engine, a dump of every table.
 */
import { afterEach } from 'vitest';
import type { JsonObject } from '../../core/canonical-json.ts';
import type { IdentifiedPdu } from '../../core/pdu.ts';
import { createStore } from '../create-store.ts';
import type { Engine, Row, Tx } from '../engine.ts';
import { SCHEMA_VERSION, tablesAt } from '../schema.ts';
import type { Store } from '../store.ts';

export interface ConformanceTarget {
  name: string;
  /** Opens database `id`, creating it if new; opening it again after close finds its data. */
  openEngine(id: string): Promise<Engine>;
  /** Creates database `id` at an earlier schema `version`, holding `rows` per table (a fixture). */
  createAtVersion(id: string, version: number, rows: Record<string, Row[]>): Promise<void>;
  /** Creates database `id` as a later Hearth would have left it: schema SCHEMA_VERSION + 1, with a marker row. */
  createNewer(id: string): Promise<void>;
  /** Whether database `id` is still exactly as `createNewer` left it. */
  newerIntact(id: string): Promise<boolean>;
  /** The store over an opened engine, when the backend adds parts of its own (media files). */
  createStore?(engine: Engine, id: string): Promise<Store>;
}

export interface Opened {
  id: string;
  store: Store;
  engine: Engine;
}

let counter = 0;

/** Opens fresh databases for a test and closes them after it. */
export function useStores(target: ConformanceTarget) {
  const open = new Set<Engine>();
  afterEach(async () => {
    for (const engine of open) await engine.close().catch(() => undefined);
    open.clear();
  });
  const openId = async (id: string): Promise<Opened> => {
    const engine = await target.openEngine(id);
    open.add(engine);
    return {
      id,
      engine,
      store: target.createStore ? await target.createStore(engine, id) : createStore(engine),
    };
  };
  return {
    newId: () => `conformance-${Date.now().toString(36)}-${++counter}`,
    fresh: () => openId(`conformance-${Date.now().toString(36)}-${++counter}`),
    reopen: openId,
    track: (engine: Engine) => open.add(engine),
  };
}

// ---------------------------------------------------------------------------------------
// Events

export const ROOM = '!room:hearth.test';
export const ALICE = '@alice:hearth.test';
export const BOB = '@bob:remote.test';

export interface EventSpec {
  id: string;
  type?: string;
  room?: string;
  sender?: string;
  stateKey?: string;
  content?: JsonObject;
  prev?: string[];
  depth: number;
}

/** A PDU with the fields the store reads. Hashes and signatures are placeholders: the store checks neither. */
export function makeEvent(spec: EventSpec): IdentifiedPdu {
  return {
    event_id: spec.id,
    room_id: spec.room ?? ROOM,
    sender: spec.sender ?? ALICE,
    type: spec.type ?? 'm.room.message',
    ...(spec.stateKey === undefined ? {} : { state_key: spec.stateKey }),
    content: spec.content ?? { msgtype: 'm.text', body: `body of ${spec.id}` },
    prev_events: spec.prev ?? [],
    auth_events: [],
    depth: spec.depth,
    origin_server_ts: 1_700_000_000_000 + spec.depth,
    hashes: { sha256: 'placeholder' },
    signatures: {},
  };
}

/** Builds a linear room: create, creator's join, then messages, each after the previous. */
export class LinearRoom {
  readonly room: string;
  private last: string | null = null;
  private depth = 0;
  private n = 0;
  constructor(room = ROOM) {
    this.room = room;
  }

  get head(): string | null {
    return this.last;
  }

  next(fields: Omit<EventSpec, 'id' | 'depth' | 'prev' | 'room'> & { id?: string } = {}) {
    const id = fields.id ?? `$${this.room.slice(1, this.room.indexOf(':'))}-${++this.n}`;
    const event = makeEvent({
      ...fields,
      id,
      room: this.room,
      depth: ++this.depth,
      prev: this.last ? [this.last] : [],
    });
    const stateBefore = this.last ? { afterEvent: this.last } : { state: new Map() };
    this.last = id;
    return { event, stateBefore };
  }

  create(creator = ALICE) {
    return this.next({
      type: 'm.room.create',
      stateKey: '',
      sender: creator,
      content: { room_version: '11' },
    });
  }

  member(userId: string, membership: string, sender = userId) {
    return this.next({ type: 'm.room.member', stateKey: userId, sender, content: { membership } });
  }

  message(body?: string) {
    return this.next({ content: { msgtype: 'm.text', body: body ?? `message ${this.n + 1}` } });
  }
}

/** A room with a create event, a join and `messages` messages; returns the builder. */
export async function seedRoom(store: Store, messages: number, room = ROOM): Promise<LinearRoom> {
  const builder = new LinearRoom(room);
  await store.rooms.persistEvents([builder.create(), builder.member(ALICE, 'join')]);
  for (let i = 0; i < messages; i++) await store.rooms.persistEvents([builder.message()]);
  return builder;
}

// ---------------------------------------------------------------------------------------
// Engine wrappers

export const ALL_TABLES = [...tablesAt(SCHEMA_VERSION).keys()];

/** Every row of every table (media bytes read as arrays), for "nothing changed" checks. */
export async function dump(engine: Engine): Promise<Record<string, Row[]>> {
  const tables = await engine.read(ALL_TABLES, async (tx) => {
    const out: Record<string, Row[]> = {};
    for (const table of ALL_TABLES) out[table] = await tx.query(table);
    return out;
  });
  for (const row of tables.media ?? []) {
    if (row.data instanceof Blob) row.data = new Uint8Array(await row.data.arrayBuffer());
  }
  return tables;
}

export class InjectedFault extends Error {
  override readonly name = 'InjectedFault';
}

/**
 * An engine that throws at its `failAt`-th write operation inside a write transaction
 * (counting from 1), to show a transaction that fails midway leaves nothing behind.
 */
export function faultyEngine(engine: Engine, failAt: number): Engine & { writes: number } {
  const wrapper = {
    kind: engine.kind,
    bytes: engine.bytes,
    writes: 0,
    read: engine.read.bind(engine),
    close: engine.close.bind(engine),
    write<T>(tables: readonly string[], fn: (tx: Tx) => Promise<T>): Promise<T> {
      return engine.write(tables, (tx) => {
        const step = () => {
          wrapper.writes += 1;
          if (wrapper.writes === failAt) throw new InjectedFault(`injected failure at write ${failAt}`);
        };
        const counted: Tx = {
          get: (t, k) => tx.get(t, k),
          getMany: (t, k) => tx.getMany(t, k),
          query: (t, r) => tx.query(t, r),
          count: (t, r) => tx.count(t, r),
          put: async (t, r) => {
            await tx.put(t, r);
            step();
          },
          putMany: async (t, r) => {
            await tx.putMany(t, r);
            step();
          },
          insert: async (t, r) => {
            await tx.insert(t, r);
            step();
          },
          delete: async (t, k) => {
            await tx.delete(t, k);
            step();
          },
          deleteRange: async (t, r) => {
            await tx.deleteRange(t, r);
            step();
          },
        };
        return fn(counted);
      });
    },
  };
  return wrapper;
}

/** Deterministic pseudo-random numbers (mulberry32), so a failing order can be replayed. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function shuffle<T>(items: T[], next: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}
