/**
 * `npm run selfcheck`: the protocol core on this machine's runtime, without a test runner.
 * Builds a small room with the core — signs the spec's JSON test vector, creates and signs
 * events of the default room version, authorises each against the state before it, forks the
 * room and resolves the forks — and prints what it did. Exits non-zero if any step disagrees
 * with the spec.
 */
import {
  authStateOf,
  authTypesForEvent,
  checkAuth,
  DEFAULT_ROOM_VERSION,
  defaultEd25519,
  getRoomVersion,
  type IdentifiedPdu,
  identify,
  type Pdu,
  resolveState,
  type StateMap,
  seedFromBase64,
  signEvent,
  signingKeyFromSeed,
  signJson,
  stateKey,
  verifyEvent,
} from '../src/core/index.ts';

const SPEC_SEED = 'YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1';
const SPEC_SIGNATURE =
  'K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ';

let failures = 0;
function report(ok: boolean, what: string): void {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures++;
}

const backend = await defaultEd25519();
const key = await signingKeyFromSeed(seedFromBase64(SPEC_SEED), '1', backend);
const signed = await signJson({}, 'domain', key);
report(
  signed.signatures.domain?.['ed25519:1'] === SPEC_SIGNATURE,
  `appendix JSON-signing vector (${backend.name} ed25519)`,
);

const server = 'hearth.localhost';
const version = getRoomVersion(DEFAULT_ROOM_VERSION);
const events = new Map<string, IdentifiedPdu>();
let roomId = '';
let depth = 0;
let ts = 1_700_000_000_000;

/** Builds, signs, verifies and authorises one event on top of `state`; returns the new state. */
interface Draft {
  type: string;
  state_key?: string;
  sender: string;
  content: Pdu['content'];
}

async function add(state: StateMap, prev: string[], fields: Draft): Promise<[StateMap, string]> {
  const authEvents = authTypesForEvent(fields, version)
    .map((k) => state.get(k))
    .filter((id): id is string => id !== undefined);
  const draft: Pdu = {
    ...fields,
    ...(roomId ? { room_id: roomId } : {}),
    depth: ++depth,
    origin_server_ts: ts++,
    prev_events: prev,
    auth_events: authEvents,
    hashes: { sha256: '' },
    signatures: {},
  };
  const pdu = await signEvent(draft, server, key, version);
  await verifyEvent(pdu, version, () => ({ [key.keyId]: key.publicKey }));
  const event = identify(pdu, version);
  if (!roomId) roomId = `!${event.event_id.slice(1)}`;
  // v12 create events are not among auth_events, but the rules still read the create event.
  const createId = state.get(stateKey('m.room.create', ''));
  const authIds = createId && !authEvents.includes(createId) ? [createId, ...authEvents] : authEvents;
  const verdict = checkAuth(
    event,
    authStateOf(authIds.map((id) => events.get(id) as IdentifiedPdu)),
    version,
  );
  if (!verdict.ok) throw new Error(`${fields.type} rejected: ${verdict.reason}`);
  events.set(event.event_id, event);
  const next = new Map(state);
  if (event.state_key !== undefined) next.set(stateKey(event.type, event.state_key), event.event_id);
  return [next, event.event_id];
}

const alice = `@alice:${server}`;
const bob = `@bob:${server}`;
let state: StateMap = new Map();
let head: string;
[state, head] = await add(state, [], {
  type: 'm.room.create',
  state_key: '',
  sender: alice,
  content: { room_version: version.id },
});
[state, head] = await add(state, [head], {
  type: 'm.room.member',
  state_key: alice,
  sender: alice,
  content: { membership: 'join' },
});
[state, head] = await add(state, [head], {
  type: 'm.room.power_levels',
  state_key: '',
  sender: alice,
  content: { users: { [bob]: 50 }, users_default: 0 },
});
[state, head] = await add(state, [head], {
  type: 'm.room.join_rules',
  state_key: '',
  sender: alice,
  content: { join_rule: 'public' },
});
[state, head] = await add(state, [head], {
  type: 'm.room.member',
  state_key: bob,
  sender: bob,
  content: { membership: 'join' },
});
report(true, `room v${version.id} ${roomId}: ${events.size} events signed, verified and authorised`);

// Two forks: Alice bans Bob while Bob changes the topic. State resolution must keep the ban.
const [banned] = await add(state, [head], {
  type: 'm.room.member',
  state_key: bob,
  sender: alice,
  content: { membership: 'ban' },
});
const [topic] = await add(state, [head], {
  type: 'm.room.topic',
  state_key: '',
  sender: bob,
  content: { topic: 'mine now' },
});
const resolved = resolveState(version, [banned, topic], (id) => events.get(id));
const bobMembership = events.get(resolved.get(stateKey('m.room.member', bob)) ?? '')?.content.membership;
report(
  bobMembership === 'ban',
  `state resolution ${version.stateRes} of a ban racing a topic change keeps the ban`,
);

if (failures > 0) {
  console.log(`${failures} check(s) failed`);
  process.exit(1);
}
console.log('\nThe protocol core works.');
