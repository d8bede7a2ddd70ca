/**
 * State groups: the state at an event kept as a delta from an earlier group, never a whole
 * copy per event (the idea of Synapse's state groups and Dendrite's state blocks).
 *
 * A group row is `{id, room_id, prev, chain, delta}`: `delta` lists `[stateKey, eventId]`
 * pairs (eventId null = key removed) applied on top of `prev`; `chain` holds the IDs of
 * every ancestor back to a snapshot (a group with no `prev` whose delta is the full state),
 * so loading any state is two reads: the group, then its chain in one bulk get. A chain
 * longer than `MAX_CHAIN` ends in a fresh snapshot, which bounds reads per load. New
 * groups are made through a `GroupWriter`, one per write transaction.
 */
import type { StateKey, StateMap } from '../../core/pdu.ts';
import type { Row, Tx } from '../engine.ts';
import { StoreError } from '../store.ts';

/** Synapse caps its delta chains at 100 hops; 64 keeps a load to ≤ 65 rows, under D1's 100 bound parameters. */
export const MAX_CHAIN = 64;

type Delta = [StateKey, string | null][];

interface GroupRow {
  id: number;
  room_id: string;
  prev: number | null;
  chain: number[];
  delta: Delta;
}

/** How many state entries (keys, over all groups) a `StateCache` keeps. */
const STATE_CACHE_ENTRIES = 200_000;

/**
 * States loaded by read transactions, by group. A committed group never changes, so what was
 * loaded stays true: the /sync passes of many waiters woken by one event, which each ask for
 * the state at the same few positions of the same room, decode it once. Only reads fill it —
 * a group written by a transaction that then failed may be made again under the same ID.
 * Bounded by the entries kept, least recently used dropped first; callers get copies.
 */
export class StateCache {
  private readonly states = new Map<number, StateMap>();
  private entries = 0;

  get(groupId: number): StateMap | undefined {
    const state = this.states.get(groupId);
    if (!state) return undefined;
    this.states.delete(groupId);
    this.states.set(groupId, state);
    return new Map(state);
  }

  set(groupId: number, state: StateMap): void {
    if (this.states.has(groupId) || state.size > STATE_CACHE_ENTRIES / 4) return;
    this.states.set(groupId, new Map(state));
    this.entries += state.size;
    for (const [id, old] of this.states) {
      if (this.entries <= STATE_CACHE_ENTRIES) break;
      this.states.delete(id);
      this.entries -= old.size;
    }
  }
}

/** The state of a group; `cache` only for read transactions (see `StateCache`). */
export async function loadState(tx: Tx, groupId: number, cache?: StateCache): Promise<StateMap> {
  const cached = cache?.get(groupId);
  if (cached) return cached;
  const state = await readState(tx, groupId);
  cache?.set(groupId, state);
  return state;
}

async function readState(tx: Tx, groupId: number): Promise<StateMap> {
  const group = (await tx.get('state_groups', groupId)) as GroupRow | undefined;
  if (!group) throw new StoreError('NOT_FOUND', `state group ${groupId} is not stored`);
  const ancestors = (await tx.getMany('state_groups', group.chain)) as (GroupRow | undefined)[];
  const state: StateMap = new Map();
  for (const row of [...ancestors, group]) {
    if (!row) throw new StoreError('BACKEND', `state group ${groupId} has a missing ancestor`);
    for (const [key, eventId] of row.delta) {
      if (eventId === null) state.delete(key);
      else state.set(key, eventId);
    }
  }
  return state;
}

/**
 * How a write transaction makes groups. The last group ID is read once — the highest key of
 * `state_groups`: IDs 1…last are all taken and no group is ever deleted, so no counter row
 * is rewritten with each state event (schema v12; v11 kept one in `streams`) — or taken from
 * `cached` when `optimistic`. Groups are never changed once written, so the chains of
 * committed groups can be remembered (`chains`). Optimistic: a group is `insert`ed, so a
 * stale cached ID fails the transaction (the ID exists) instead of overwriting a group.
 */
export class GroupWriter {
  readonly tx: Tx;
  private readonly optimistic: boolean;
  private readonly cached: number | undefined;
  private readonly chains: ReadonlyMap<number, readonly number[]>;
  private readonly write: (promise: Promise<unknown>) => void;
  /** The last group ID taken in this transaction; undefined until the counter is known. */
  last: number | undefined;
  /** Groups written in this transaction with their chains (to remember once committed). */
  readonly made: [number, number[]][] = [];

  constructor(
    tx: Tx,
    options: {
      optimistic: boolean;
      cached: number | undefined;
      chains: ReadonlyMap<number, readonly number[]>;
      write: (promise: Promise<unknown>) => void;
    },
  ) {
    this.tx = tx;
    this.optimistic = options.optimistic;
    this.cached = options.cached;
    this.chains = options.chains;
    this.write = options.write;
  }

  private async nextId(): Promise<number> {
    if (this.last === undefined) {
      if (this.optimistic && this.cached !== undefined) this.last = this.cached;
      else {
        const [row] = await this.tx.query('state_groups', { reverse: true, limit: 1 });
        this.last ??= (row?.id as number | undefined) ?? 0;
      }
    }
    this.last += 1;
    return this.last;
  }

  private async chainOf(id: number): Promise<readonly number[]> {
    const known = this.chains.get(id) ?? this.made.find(([made]) => made === id)?.[1];
    if (known) return known;
    const parent = (await this.tx.get('state_groups', id)) as GroupRow | undefined;
    if (!parent) throw new StoreError('NOT_FOUND', `state group ${id} is not stored`);
    return parent.chain;
  }

  private put(group: GroupRow): void {
    this.made.push([group.id, group.chain]);
    const row = group as unknown as Row;
    this.write(this.optimistic ? this.tx.insert('state_groups', row) : this.tx.put('state_groups', row));
  }

  /** Stores the state `parent` + `delta` as a new group and returns its ID. */
  async add(roomId: string, parentId: number | null, delta: Delta): Promise<number> {
    const [id, chain] = await Promise.all([
      this.nextId(),
      parentId === null ? undefined : this.chainOf(parentId),
    ]);
    if (parentId !== null && chain && chain.length + 1 < MAX_CHAIN) {
      this.put({ id, room_id: roomId, prev: parentId, chain: [...chain, parentId], delta });
      return id;
    }
    const state = parentId !== null ? await loadState(this.tx, parentId) : new Map<StateKey, string>();
    for (const [key, eventId] of delta) {
      if (eventId === null) state.delete(key);
      else state.set(key, eventId);
    }
    this.put({ id, room_id: roomId, prev: null, chain: [], delta: [...state] });
    return id;
  }

  /** A group holding exactly `state`: `base` when equal, else a delta from it (or a snapshot). */
  async forState(roomId: string, state: StateMap, base: number | null): Promise<number> {
    if (base === null) return this.add(roomId, null, [...state]);
    const baseState = await loadState(this.tx, base);
    const delta: Delta = [];
    for (const [key, eventId] of state) if (baseState.get(key) !== eventId) delta.push([key, eventId]);
    for (const key of baseState.keys()) if (!state.has(key)) delta.push([key, null]);
    if (delta.length === 0) return base;
    // A delta as large as the state saves nothing: start a snapshot instead.
    return delta.length * 2 > state.size ? this.add(roomId, null, [...state]) : this.add(roomId, base, delta);
  }
}
