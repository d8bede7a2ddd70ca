/**
 * State groups: the state at an event kept as a delta from an earlier group, never a whole
 * copy per event (the idea of Synapse's state groups and Dendrite's state blocks).
 *
 * A group row is `{id, room_id, prev, chain, delta}`: `delta` lists `[stateKey, eventId]`
 * pairs (eventId null = key removed) applied on top of `prev`; `chain` holds the IDs of
 * every ancestor back to a snapshot (a group with no `prev` whose delta is the full state),
 * so loading any state is two reads: the group, then its chain in one bulk get. A chain
 * longer than `MAX_CHAIN` ends in a fresh snapshot, which bounds reads per load.
 */
import type { StateKey, StateMap } from '../../core/pdu.ts';
import type { Tx } from '../engine.ts';
import { StoreError } from '../store.ts';
import { nextPosition } from './common.ts';

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

export async function loadState(tx: Tx, groupId: number): Promise<StateMap> {
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

/** Stores the state `parent` + `delta` as a new group and returns its ID. */
export async function addGroup(
  tx: Tx,
  roomId: string,
  parentId: number | null,
  delta: Delta,
): Promise<number> {
  const [id, parent] = await Promise.all([
    nextPosition(tx, 'state_groups'),
    parentId === null ? undefined : (tx.get('state_groups', parentId) as Promise<GroupRow | undefined>),
  ]);
  if (parentId !== null && !parent)
    throw new StoreError('NOT_FOUND', `state group ${parentId} is not stored`);
  if (parent && parent.chain.length + 1 < MAX_CHAIN) {
    await tx.put('state_groups', {
      id,
      room_id: roomId,
      prev: parent.id,
      chain: [...parent.chain, parent.id],
      delta,
    });
    return id;
  }
  const state = parent ? await loadState(tx, parent.id) : new Map<StateKey, string>();
  for (const [key, eventId] of delta) {
    if (eventId === null) state.delete(key);
    else state.set(key, eventId);
  }
  await tx.put('state_groups', { id, room_id: roomId, prev: null, chain: [], delta: [...state] });
  return id;
}

/** A group holding exactly `state`: `base` when equal, else a delta from it (or a snapshot). */
export async function groupForState(
  tx: Tx,
  roomId: string,
  state: StateMap,
  base: number | null,
): Promise<number> {
  if (base === null) return addGroup(tx, roomId, null, [...state]);
  const baseState = await loadState(tx, base);
  const delta: Delta = [];
  for (const [key, eventId] of state) if (baseState.get(key) !== eventId) delta.push([key, eventId]);
  for (const key of baseState.keys()) if (!state.has(key)) delta.push([key, null]);
  if (delta.length === 0) return base;
  // A delta as large as the state saves nothing: start a snapshot instead.
  return delta.length * 2 > state.size
    ? addGroup(tx, roomId, null, [...state])
    : addGroup(tx, roomId, base, delta);
}
