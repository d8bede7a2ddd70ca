/**
 * The set definitions of state resolution v2 (rooms/fragments/v2-state-res.md "Definitions",
 * and rooms/v12.md for the conflicted state subgraph): unconflicted state map and conflicted
 * state set, auth chain, auth difference, conflicted state subgraph. Every walk is iterative
 * and visits each event once, so a room with tens of thousands of state events stays linear.
 */
import type { StateKey, StateMap } from '../pdu.ts';
import type { EventLookup } from './lookup.ts';

export interface SeparatedState {
  /** Keys present in every state set with the same event. */
  readonly unconflicted: StateMap;
  /** Every other key, with each distinct event it has in any state set. */
  readonly conflicted: Map<StateKey, Set<string>>;
}

/**
 * Splits state sets into the unconflicted state map and the conflicted state set. A key
 * missing from some state set is conflicted (v2 definition: "present in every S_i with the
 * same value").
 */
export function separateConflicted(stateSets: readonly ReadonlyMap<StateKey, string>[]): SeparatedState {
  const unconflicted: StateMap = new Map();
  const conflicted = new Map<StateKey, Set<string>>();
  const [first, ...rest] = stateSets;
  if (!first) return { unconflicted, conflicted };
  for (const [key, id] of first) {
    if (rest.every((set) => set.get(key) === id)) unconflicted.set(key, id);
  }
  for (const set of stateSets) {
    for (const [key, id] of set) {
      if (unconflicted.has(key)) continue;
      let ids = conflicted.get(key);
      if (!ids) {
        ids = new Set();
        conflicted.set(key, ids);
      }
      ids.add(id);
    }
  }
  return { unconflicted, conflicted };
}

/**
 * The union of the auth chains of `eventIds`: every event reachable through `auth_events`
 * links, not counting the starting events themselves unless another one reaches them
 * (the spec's "auth chain of E" does not contain E; ruma reads it the same way). Synapse's
 * auth chain difference also counts the state events themselves; the two readings differ only
 * on unconflicted events cited by some state sets' events and not others': this reading adds
 * them to the full conflicted set, so they are replayed by the iterative auth checks (and can
 * sway the checks of later events there) before step 5 restores them from the unconflicted map.
 */
export function authChainOf(eventIds: Iterable<string>, lookup: EventLookup): Set<string> {
  const chain = new Set<string>();
  const stack: string[] = [];
  for (const id of eventIds) {
    for (const authId of lookup.info(id, 'an event of a state set').authIds) stack.push(authId);
  }
  while (stack.length > 0) {
    const id = stack.pop() as string;
    if (chain.has(id)) continue;
    chain.add(id);
    for (const authId of lookup.info(id, 'an event of an auth chain').authIds) {
      if (!chain.has(authId)) stack.push(authId);
    }
  }
  return chain;
}

/** ∪ C_i − ∩ C_i: the events that appear in some auth chain but not in all. */
export function authDifference(authChains: ReadonlyArray<ReadonlySet<string>>): Set<string> {
  const difference = new Set<string>();
  if (authChains.length < 2) return difference;
  // Walking the smallest chain first keeps the common part's test to one lookup per chain.
  const chains = [...authChains].sort((a, b) => a.size - b.size);
  const counts = new Map<string, number>();
  for (const chain of chains) {
    for (const id of chain) counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  for (const [id, count] of counts) {
    if (count < chains.length) difference.add(id);
  }
  return difference;
}

/**
 * The conflicted state subgraph (rooms/v12.md, MSC4297): the events on some `auth_events`
 * path from one conflicted event to another, endpoints included. An event is on such a path
 * exactly when it is reachable from a conflicted event (by at least one edge) and can itself
 * reach a conflicted event, so two linear walks find them all: forward from the conflicted
 * events, then backward over the reached part.
 */
export function conflictedStateSubgraph(conflicted: ReadonlySet<string>, lookup: EventLookup): Set<string> {
  // Forward: everything strictly below a conflicted event, with the reverse edges seen on the way.
  const reached = new Set<string>();
  const citedBy = new Map<string, string[]>();
  const stack: string[] = [];
  const visit = (from: string) => {
    for (const authId of lookup.info(from, 'an event of the conflicted state subgraph').authIds) {
      let citers = citedBy.get(authId);
      if (!citers) {
        citers = [];
        citedBy.set(authId, citers);
      }
      citers.push(from);
      if (!reached.has(authId)) {
        reached.add(authId);
        stack.push(authId);
      }
    }
  };
  for (const id of conflicted) visit(id);
  while (stack.length > 0) visit(stack.pop() as string);

  // Backward: from each reached conflicted event, climb to the events that cite it.
  const subgraph = new Set<string>();
  const climb: string[] = [];
  for (const id of conflicted) {
    if (reached.has(id)) {
      subgraph.add(id);
      climb.push(id);
    }
  }
  while (climb.length > 0) {
    const id = climb.pop() as string;
    for (const citer of citedBy.get(id) ?? []) {
      if (subgraph.has(citer)) continue;
      subgraph.add(citer);
      climb.push(citer);
    }
  }
  return subgraph;
}
