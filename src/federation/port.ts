/**
 * `createFederationPort` — the homeserver's `FederationPort` (src/homeserver/ports.ts) made of
 * signed requests through the `FederationClient`: one request per method, the answer's shape
 * checked against what the spec's endpoint promises (data/api/server-server/*.yaml). PDUs in an
 * answer are only checked to be JSON objects: they are untrusted and go through accept.
 *
 * A refusal by the other server keeps its status and `errcode` (a 403 M_FORBIDDEN join stays
 * one); a server that cannot be reached, or answers something that is not what the endpoint
 * promises, is `502 M_UNKNOWN` naming it — every failure is a `MatrixError`, so a caller
 * trying several servers moves on to the next.
 */
import type { JsonObject, JsonValue } from '../core/canonical-json.ts';
import type { Pdu } from '../core/pdu.ts';
import { isMatrixError, MatrixError } from '../homeserver/errors.ts';
import type { EventTemplate, FederationPort, SendJoinResponse } from '../homeserver/ports.ts';
import { isTransportError } from '../transport/transport.ts';
import type { FederationClient, FederationRequest } from './client.ts';
import { FederationRequestError } from './client.ts';
import { createQueryPort } from './queries.ts';

const FEDERATION = '/_matrix/federation';

/** A `/state` or `send_join` answer of a large room is far past the default limit. */
const ROOM_STATE_MAX_BYTES = 256 * 1024 * 1024;

const enc = encodeURIComponent;

const isObject = (value: unknown): value is JsonObject =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** An answer that is not what the endpoint promises. */
class BadAnswer extends Error {}

function field<T>(
  body: JsonObject,
  key: string,
  check: (v: JsonValue | undefined) => v is T & JsonValue,
  what: string,
): T {
  const value = body[key];
  if (!check(value)) throw new BadAnswer(`"${key}" is not ${what}`);
  return value;
}

const isString = (v: JsonValue | undefined): v is string => typeof v === 'string';
const isStringArray = (v: JsonValue | undefined): v is string[] =>
  Array.isArray(v) && v.every((x) => typeof x === 'string');
const isObjectArray = (v: JsonValue | undefined): v is JsonObject[] => Array.isArray(v) && v.every(isObject);
const isObj = (v: JsonValue | undefined): v is JsonObject => isObject(v);

const pdus = (body: JsonObject, key: string): Pdu[] =>
  field(body, key, isObjectArray, 'an array of objects') as unknown as Pdu[];

/** make_join / make_leave / make_knock: `room_version` (absent means "1" for make_join) and `event`. */
function template(body: JsonObject): EventTemplate {
  const roomVersion =
    body.room_version === undefined ? '1' : field(body, 'room_version', isString, 'a string');
  return { roomVersion, event: field(body, 'event', isObj, 'an object') };
}

export function createFederationPort(client: FederationClient): FederationPort {
  /** One request; every failure becomes a MatrixError naming the destination. */
  async function ask<T>(
    destination: string,
    request: FederationRequest,
    read: (body: JsonObject) => T,
  ): Promise<T> {
    let body: JsonObject;
    try {
      body = await client.request(destination, request);
    } catch (err) {
      throw asMatrixError(destination, request, err);
    }
    try {
      return read(body);
    } catch (err) {
      if (!(err instanceof BadAnswer)) throw err;
      throw new MatrixError(
        502,
        'M_UNKNOWN',
        `${destination} answered ${request.method} ${request.target.split('?')[0]} wrongly: ${err.message}`,
      );
    }
  }

  const versionsQuery = (param: string, versions: readonly string[]) =>
    versions.length > 0 ? `?${versions.map((v) => `${param}=${enc(v)}`).join('&')}` : '';

  return {
    makeJoin: (destination, roomId, userId, versions) =>
      ask(
        destination,
        {
          method: 'GET',
          target: `${FEDERATION}/v1/make_join/${enc(roomId)}/${enc(userId)}${versionsQuery('ver', versions)}`,
        },
        template,
      ),

    sendJoin: (destination, roomId, eventId, event, options = {}) =>
      ask(
        destination,
        {
          method: 'PUT',
          target: `${FEDERATION}/v2/send_join/${enc(roomId)}/${enc(eventId)}${options.omitMembers ? '?omit_members=true' : ''}`,
          body: event as JsonObject,
          maxResponseBytes: ROOM_STATE_MAX_BYTES,
        },
        (body): SendJoinResponse => {
          const answer: SendJoinResponse = {
            origin: field(body, 'origin', isString, 'a string'),
            state: pdus(body, 'state'),
            authChain: pdus(body, 'auth_chain'),
          };
          if (body.event !== undefined) answer.event = field(body, 'event', isObj, 'an object') as Pdu;
          if (body.members_omitted !== undefined) answer.membersOmitted = body.members_omitted === true;
          if (body.servers_in_room !== undefined)
            answer.serversInRoom = field(body, 'servers_in_room', isStringArray, 'an array of strings');
          return answer;
        },
      ),

    makeLeave: (destination, roomId, userId) =>
      ask(
        destination,
        { method: 'GET', target: `${FEDERATION}/v1/make_leave/${enc(roomId)}/${enc(userId)}` },
        template,
      ),

    sendLeave: (destination, roomId, eventId, event) =>
      ask(
        destination,
        {
          method: 'PUT',
          target: `${FEDERATION}/v2/send_leave/${enc(roomId)}/${enc(eventId)}`,
          body: event as JsonObject,
        },
        () => undefined,
      ),

    invite: (destination, roomId, eventId, request) =>
      ask(
        destination,
        {
          method: 'PUT',
          target: `${FEDERATION}/v2/invite/${enc(roomId)}/${enc(eventId)}`,
          body: {
            room_version: request.roomVersion,
            event: request.event as JsonObject,
            invite_room_state: request.inviteRoomState,
          },
        },
        (body) => field(body, 'event', isObj, 'an object') as Pdu,
      ),

    makeKnock: (destination, roomId, userId, versions) =>
      ask(
        destination,
        {
          method: 'GET',
          target: `${FEDERATION}/v1/make_knock/${enc(roomId)}/${enc(userId)}${versionsQuery('ver', versions)}`,
        },
        (body) => ({
          roomVersion: field(body, 'room_version', isString, 'a string'),
          event: field(body, 'event', isObj, 'an object'),
        }),
      ),

    sendKnock: (destination, roomId, eventId, event) =>
      ask(
        destination,
        {
          method: 'PUT',
          target: `${FEDERATION}/v1/send_knock/${enc(roomId)}/${enc(eventId)}`,
          body: event as JsonObject,
        },
        (body) => field(body, 'knock_room_state', isObjectArray, 'an array of objects'),
      ),

    backfill: (destination, roomId, from, limit) =>
      ask(
        destination,
        {
          method: 'GET',
          target: `${FEDERATION}/v1/backfill/${enc(roomId)}?${[...from.map((id) => `v=${enc(id)}`), `limit=${limit}`].join('&')}`,
          maxResponseBytes: ROOM_STATE_MAX_BYTES,
        },
        (body) => pdus(body, 'pdus'),
      ),

    getMissingEvents: (destination, roomId, request) =>
      ask(
        destination,
        {
          method: 'POST',
          target: `${FEDERATION}/v1/get_missing_events/${enc(roomId)}`,
          body: {
            earliest_events: [...request.earliest],
            latest_events: [...request.latest],
            limit: request.limit,
            min_depth: request.minDepth,
          },
          maxResponseBytes: ROOM_STATE_MAX_BYTES,
        },
        (body) => pdus(body, 'events'),
      ),

    getEvent: (destination, eventId) =>
      ask(destination, { method: 'GET', target: `${FEDERATION}/v1/event/${enc(eventId)}` }, (body) => {
        const found = pdus(body, 'pdus');
        if (found.length !== 1) throw new BadAnswer(`"pdus" holds ${found.length} events, not one`);
        return found[0] as Pdu;
      }),

    getState: (destination, roomId, eventId) =>
      ask(
        destination,
        {
          method: 'GET',
          target: `${FEDERATION}/v1/state/${enc(roomId)}?event_id=${enc(eventId)}`,
          maxResponseBytes: ROOM_STATE_MAX_BYTES,
        },
        (body) => ({ pdus: pdus(body, 'pdus'), authChain: pdus(body, 'auth_chain') }),
      ),

    getStateIds: (destination, roomId, eventId) =>
      ask(
        destination,
        {
          method: 'GET',
          target: `${FEDERATION}/v1/state_ids/${enc(roomId)}?event_id=${enc(eventId)}`,
          maxResponseBytes: ROOM_STATE_MAX_BYTES,
        },
        (body) => ({
          pduIds: field(body, 'pdu_ids', isStringArray, 'an array of strings'),
          authChainIds: field(body, 'auth_chain_ids', isStringArray, 'an array of strings'),
        }),
      ),

    getEventAuth: (destination, roomId, eventId) =>
      ask(
        destination,
        {
          method: 'GET',
          target: `${FEDERATION}/v1/event_auth/${enc(roomId)}/${enc(eventId)}`,
          maxResponseBytes: ROOM_STATE_MAX_BYTES,
        },
        (body) => pdus(body, 'auth_chain'),
      ),
    // The queries: what a client is told when another server refuses or fails them.
    ...createQueryPort(client),
  };
}

/** A failed request as the MatrixError the homeserver's caller sees. */
function asMatrixError(destination: string, request: FederationRequest, err: unknown): MatrixError {
  if (isMatrixError(err)) return err;
  const what = `${request.method} ${request.target.split('?')[0]}`;
  if (err instanceof FederationRequestError) {
    // The other server's refusal, as it said it (4xx with an errcode); anything else is its failure.
    if (err.status >= 400 && err.status < 500 && err.errcode !== undefined)
      return new MatrixError(err.status, err.errcode, `${destination}: ${err.message}`);
    return new MatrixError(502, 'M_UNKNOWN', `${destination} failed ${what}: ${err.message}`);
  }
  if (isTransportError(err))
    return new MatrixError(
      502,
      'M_UNKNOWN',
      `${destination} could not be reached (${err.code}): ${err.message}`,
    );
  return new MatrixError(502, 'M_UNKNOWN', `${destination} failed ${what}: ${String(err)}`);
}
