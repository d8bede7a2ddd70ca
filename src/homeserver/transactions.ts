/**
 * Received federation transactions — server-server-api.md "Transactions", "PDUs", "EDUs",
 * "Server Access Control Lists (ACLs)"; `PUT /_matrix/federation/v1/send/{txnId}`
 * (data/api/server-server/transactions.yaml).
 *
 * A transaction is staged durably (`stageTransaction`) before anything of it is applied, and
 * its answer kept (`finishTransaction`) once it was: a replay of the same origin and txnId gets
 * the first answer and changes nothing; a crash in between leaves it staged, and
 * `resumeStaged` (run at start) applies it then. Applying again after a crash that came
 * mid-way repeats nothing that was done: accept answers an event it has as `known`, and typing,
 * receipts and presence are set to what the EDU says.
 *
 * PDUs go, grouped by room in their order, through `receivePdus` — for now accept
 * (`services.rooms.acceptRemote`); fetching missing prev events and state is the inbound
 * federation service's, which replaces that one function.
 */
import type { JsonObject, JsonValue } from '../core/canonical-json.ts';
import { computeEventId, type Pdu, roomVersions } from '../core/index.ts';
import type { HomeserverContext } from './context.ts';
import type { E2eeService } from './e2ee/index.ts';
import type { PresenceService } from './ephemeral/presence.ts';
import type { TypingService } from './ephemeral/typing.ts';
import { badJson, MatrixError } from './errors.ts';
import { serverOf } from './rooms/accept.ts';
import type { RoomsService } from './rooms/service.ts';

/** "A transaction is limited to 50 PDUs and 100 EDUs" (server-server-api.md "Transactions"). */
export const MAX_TXN_PDUS = 50;
export const MAX_TXN_EDUS = 100;

/** How long a transaction's answer is kept for replays: senders retry within minutes, not days. */
export const TXN_ANSWER_KEPT_MS = 24 * 60 * 60 * 1000;

export interface TransactionsService {
  /** `PUT /send/{txnId}` from `origin`: the answer, `{pdus: {eventId: {} | {error}}}`. */
  receive(origin: string, txnId: string, txn: JsonObject): Promise<JsonObject>;
  /** Applies transactions staged before a restart and not answered. */
  resumeStaged(): Promise<number>;
}

export interface TransactionsDeps {
  rooms: RoomsService;
  /**
   * Received PDUs of one room, accepted with what they lack fetched first
   * (`services.federationInbound.receivePdus`): one result per PDU by event ID.
   */
  receivePdus(origin: string, roomId: string, pdus: unknown[]): Promise<Map<string, { error?: string }>>;
  typing: TypingService;
  presence: PresenceService;
  /** E2EE's EDUs (to-device, device lists, signing keys); dropped when absent. */
  e2ee?: Pick<E2eeService, 'receiveEdu'>;
}

const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

const PRESENCE_STATES = new Set(['online', 'offline', 'unavailable']);

export function createTransactions(ctx: HomeserverContext, deps: TransactionsDeps): TransactionsService {
  const { store, clock, logger, notifier } = ctx;
  const { rooms } = deps;
  /** One application at a time per origin+txnId (a retry arriving while the first runs). */
  const running = new Map<string, Promise<JsonObject>>();

  /** Whether `origin` has a joined member in the room. */
  async function originInRoom(origin: string, roomId: string): Promise<boolean> {
    const members = await store.rooms.members(roomId, 'join');
    return members.some((m) => serverOf(m.userId) === origin);
  }

  /** The ID a PDU is answered under; null when none can be computed (it is then not answered). */
  function idOf(pdu: Pdu, versionId: string | undefined): string | null {
    const version = versionId ? roomVersions[versionId] : undefined;
    if (!version) return typeof pdu.event_id === 'string' ? pdu.event_id : null;
    try {
      return computeEventId(pdu, version);
    } catch {
      return typeof pdu.event_id === 'string' ? pdu.event_id : null;
    }
  }

  async function applyPdus(origin: string, pdus: readonly JsonValue[]): Promise<JsonObject> {
    const results: JsonObject = {};
    const byRoom = new Map<string, Pdu[]>();
    for (const pdu of pdus) {
      if (!isObject(pdu) || typeof pdu.room_id !== 'string') continue; // no room: nothing to answer under
      const list = byRoom.get(pdu.room_id) ?? [];
      list.push(pdu as unknown as Pdu);
      byRoom.set(pdu.room_id, list);
    }
    for (const [roomId, list] of byRoom) {
      const version = await rooms.roomVersionOf(roomId);
      const refuse = (pdu: Pdu, why: string) => {
        const id = idOf(pdu, version?.id);
        if (id !== null) results[id] = { error: why };
      };
      if (!version || !(await rooms.serverAllowed(roomId, origin))) {
        for (const pdu of list) refuse(pdu, `${origin} is not in room ${roomId} here`);
        continue;
      }
      // A server in the room may relay any event of it; one that is not (yet: its join may be
      // on its way) only its own users' events, which the auth rules then judge.
      const inRoom = await originInRoom(origin, roomId);
      const admitted = list.filter((pdu) => {
        if (inRoom || serverOf(pdu.sender) === origin) return true;
        refuse(pdu, `${origin} is not in room ${roomId} here`);
        return false;
      });
      if (admitted.length === 0) continue;
      try {
        // The inbound service accepts them, fetching missing prev events and state first.
        const received = await deps.receivePdus(origin, roomId, admitted);
        for (const [id, result] of received) results[id] = result;
      } catch (err) {
        logger.warn('a received transaction could not be applied to a room', { roomId, error: String(err) });
        throw err;
      }
    }
    return results;
  }

  async function applyTyping(origin: string, content: JsonObject): Promise<void> {
    const { room_id: roomId, user_id: userId, typing } = content;
    if (typeof roomId !== 'string' || typeof userId !== 'string' || typeof typing !== 'boolean') return;
    if (serverOf(userId) !== origin || !(await rooms.serverAllowed(roomId, origin))) return;
    if ((await rooms.membershipOf(userId, roomId)) !== 'join') return;
    const timeout = typeof content.timeout === 'number' ? content.timeout : undefined;
    deps.typing.set(roomId, userId, typing, timeout);
  }

  async function applyReceipts(origin: string, content: JsonObject): Promise<void> {
    for (const [roomId, byType] of Object.entries(content)) {
      if (!isObject(byType) || !isObject(byType['m.read'])) continue;
      if (!(await rooms.serverAllowed(roomId, origin))) continue;
      for (const [userId, receipt] of Object.entries(byType['m.read'])) {
        if (serverOf(userId) !== origin || !isObject(receipt) || !Array.isArray(receipt.event_ids)) continue;
        if ((await rooms.membershipOf(userId, roomId)) !== 'join') continue;
        const eventId = receipt.event_ids.find((id): id is string => typeof id === 'string');
        const data = isObject(receipt.data) ? receipt.data : {};
        const threadId = typeof data.thread_id === 'string' ? data.thread_id : undefined;
        if (eventId === undefined) continue;
        const event = await store.rooms.getEvent(eventId);
        if (!event || event.roomId !== roomId || event.stream === null) continue;
        await store.receipts.putReceipt({
          roomId,
          receiptType: 'm.read',
          userId,
          ...(threadId !== undefined ? { threadId } : {}),
          eventId,
          data: typeof data.ts === 'number' ? { ts: data.ts } : { ts: clock.now() },
        });
        notifier.notify({ rooms: [roomId] });
      }
    }
  }

  async function applyPresence(origin: string, content: JsonObject): Promise<void> {
    if (!Array.isArray(content.push)) return;
    for (const update of content.push) {
      if (!isObject(update) || typeof update.user_id !== 'string' || serverOf(update.user_id) !== origin)
        continue;
      if (typeof update.presence !== 'string' || !PRESENCE_STATES.has(update.presence)) continue;
      const status = typeof update.status_msg === 'string' ? update.status_msg : null;
      await deps.presence.set(update.user_id, update.presence as 'online', status);
    }
  }

  async function applyEdus(origin: string, edus: readonly JsonValue[]): Promise<void> {
    for (const edu of edus) {
      if (!isObject(edu) || !isObject(edu.content)) continue;
      try {
        if (edu.edu_type === 'm.typing') await applyTyping(origin, edu.content);
        else if (edu.edu_type === 'm.receipt') await applyReceipts(origin, edu.content);
        else if (edu.edu_type === 'm.presence') await applyPresence(origin, edu.content);
        // Device lists, to-device messages and signing keys are E2EE's; others are ignored.
        else await deps.e2ee?.receiveEdu(origin, edu.edu_type, edu.content);
      } catch (err) {
        // One bad EDU must not fail the transaction: "EDUs … have no response".
        logger.warn('a received EDU could not be applied', {
          origin,
          type: String(edu.edu_type),
          error: String(err),
        });
      }
    }
  }

  async function apply(origin: string, txnId: string, txn: JsonObject): Promise<JsonObject> {
    const pdus = Array.isArray(txn.pdus) ? txn.pdus : [];
    const edus = Array.isArray(txn.edus) ? txn.edus : [];
    const response: JsonObject = { pdus: await applyPdus(origin, pdus) };
    await applyEdus(origin, edus);
    await store.federation.finishTransaction(origin, txnId, response, clock.now());
    return response;
  }

  function applyOnce(origin: string, txnId: string, txn: JsonObject): Promise<JsonObject> {
    const key = JSON.stringify([origin, txnId]);
    const already = running.get(key);
    if (already) return already;
    const work = apply(origin, txnId, txn).finally(() => running.delete(key));
    running.set(key, work);
    return work;
  }

  let lastPrune = Number.NEGATIVE_INFINITY;

  return {
    async receive(origin, txnId, txn) {
      const pdus = Array.isArray(txn.pdus) ? txn.pdus : [];
      const edus = Array.isArray(txn.edus) ? txn.edus : [];
      if (pdus.length > MAX_TXN_PDUS)
        throw badJson(`A transaction holds at most ${MAX_TXN_PDUS} PDUs; this one has ${pdus.length}`);
      if (edus.length > MAX_TXN_EDUS)
        throw badJson(`A transaction holds at most ${MAX_TXN_EDUS} EDUs; this one has ${edus.length}`);
      if (txn.origin !== undefined && txn.origin !== origin)
        throw new MatrixError(
          403,
          'M_FORBIDDEN',
          `The transaction says it is from ${String(txn.origin)}, not ${origin}`,
        );
      const now = clock.now();
      if (now - lastPrune > TXN_ANSWER_KEPT_MS / 24) {
        lastPrune = now;
        await store.federation.pruneTransactions(now - TXN_ANSWER_KEPT_MS);
      }
      const staged = await store.federation.stageTransaction({ origin, txnId, txn, receivedAt: now });
      if (staged.status === 'answered') return staged.response;
      if (staged.status === 'staged') {
        // Staged and not answered: being applied now, or left by a crash — apply (once) and answer.
        const [first] = (await store.federation.stagedTransactions(1_000)).filter(
          (t) => t.origin === origin && t.txnId === txnId,
        );
        return applyOnce(origin, txnId, first?.txn ?? txn);
      }
      return applyOnce(origin, txnId, txn);
    },

    async resumeStaged() {
      let applied = 0;
      for (;;) {
        const staged = await store.federation.stagedTransactions(20);
        if (staged.length === 0) return applied;
        for (const { origin, txnId, txn } of staged) {
          await applyOnce(origin, txnId, txn);
          applied++;
        }
      }
    },
  };
}
