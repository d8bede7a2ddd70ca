/**
 * Test support: a `FederationPort` whose event-fetching requests (backfill, missing events,
 * event, state, state_ids, event_auth) are real signed requests made with this server's
 * federation client to the other server's real endpoints; everything else is "federation is
 * off". The production port (with the outbox, joins and invites) is built elsewhere; this
 * one lets tests drive two or three homeservers through the endpoints they serve.
 */
import type { JsonObject } from '../core/canonical-json.ts';
import type { Pdu } from '../core/pdu.ts';
import { MatrixError } from '../homeserver/errors.ts';
import { type FederationPort, federationOff } from '../homeserver/ports.ts';
import { type FederationClient, FederationRequestError } from './client.ts';

const enc = encodeURIComponent;

const pdusOf = (value: unknown): Pdu[] =>
  Array.isArray(value)
    ? value.filter((x): x is Pdu => typeof x === 'object' && x !== null && !Array.isArray(x))
    : [];

const stringsOf = (value: unknown): string[] =>
  Array.isArray(value) ? value.filter((x): x is string => typeof x === 'string') : [];

/** `client` is asked for at each request: the federation pieces may be built after the port. */
export function eventFetchingPort(client: () => FederationClient): FederationPort {
  async function get(destination: string, target: string, body?: JsonObject): Promise<JsonObject> {
    try {
      return await client().request(destination, {
        method: body ? 'POST' : 'GET',
        target: `/_matrix/federation/v1${target}`,
        ...(body ? { body } : {}),
      });
    } catch (err) {
      if (err instanceof FederationRequestError)
        throw new MatrixError(err.status >= 400 ? err.status : 502, err.errcode ?? 'M_UNKNOWN', err.message);
      throw err;
    }
  }
  return {
    ...federationOff,
    async backfill(destination, roomId, from, limit) {
      const query = [...from.map((id) => `v=${enc(id)}`), `limit=${limit}`].join('&');
      return pdusOf((await get(destination, `/backfill/${enc(roomId)}?${query}`)).pdus);
    },
    async getMissingEvents(destination, roomId, request) {
      const body = {
        earliest_events: [...request.earliest],
        latest_events: [...request.latest],
        limit: request.limit,
        min_depth: request.minDepth,
      };
      return pdusOf((await get(destination, `/get_missing_events/${enc(roomId)}`, body)).events);
    },
    async getEvent(destination, eventId) {
      const [pdu] = pdusOf((await get(destination, `/event/${enc(eventId)}`)).pdus);
      if (!pdu) throw new MatrixError(502, 'M_UNKNOWN', `${destination} answered no event`);
      return pdu;
    },
    async getState(destination, roomId, eventId) {
      const answer = await get(destination, `/state/${enc(roomId)}?event_id=${enc(eventId)}`);
      return { pdus: pdusOf(answer.pdus), authChain: pdusOf(answer.auth_chain) };
    },
    async getStateIds(destination, roomId, eventId) {
      const answer = await get(destination, `/state_ids/${enc(roomId)}?event_id=${enc(eventId)}`);
      return { pduIds: stringsOf(answer.pdu_ids), authChainIds: stringsOf(answer.auth_chain_ids) };
    },
    async getEventAuth(destination, roomId, eventId) {
      return pdusOf((await get(destination, `/event_auth/${enc(roomId)}/${enc(eventId)}`)).auth_chain);
    },
  };
}
