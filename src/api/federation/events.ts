/**
 * Event retrieval between servers — server-server-api.md "Backfilling and retrieving missing
 * events", "Retrieving events", "Retrieving event authorisation information"
 * (data/api/server-server/{backfill,events,event_auth}.yaml). Who may ask and what they see
 * (membership, history visibility, server ACLs) is decided in the homeserver
 * (federation-inbound/serve.ts); these declare the endpoints.
 */
import { isValidEventId } from '../../core/index.ts';
import type { Services } from '../../homeserver/services.ts';
import { eventIdParam, roomIdParam } from '../client/room-params.ts';
import { type Endpoint, q, v } from '../endpoint.ts';
import { federationEndpoint, type XMatrixDeps } from './auth.ts';

/** Bounds the IDs a request may name: each is a read. */
const MAX_IDS = 100;

const eventIds = v.array(
  v.refine(v.string(), (id) => (isValidEventId(id) ? undefined : 'is not a valid event ID')),
  { max: MAX_IDS },
);

export function eventEndpoints(deps: XMatrixDeps, services: Services): Endpoint[] {
  const inbound = services.federationInbound;
  return [
    federationEndpoint(deps, {
      // GET /_matrix/federation/v1/backfill/{roomId}
      method: 'GET',
      path: '/backfill/{roomId}',
      versions: ['v1'],
      params: { roomId: roomIdParam },
      query: q.object({ v: q.list({}, { max: MAX_IDS }), limit: q.int({ min: 0 }) }),
      spec: 'server-server-api/#get_matrixfederationv1backfillroomid',
      handler: ({ origin, params, query }) => inbound.backfill(origin, params.roomId, query.v, query.limit),
    }),
    federationEndpoint(deps, {
      // POST /_matrix/federation/v1/get_missing_events/{roomId}
      method: 'POST',
      path: '/get_missing_events/{roomId}',
      versions: ['v1'],
      params: { roomId: roomIdParam },
      body: v.object({
        earliest_events: eventIds,
        latest_events: eventIds,
        limit: v.optional(v.int({ min: 0 })),
        min_depth: v.optional(v.int()),
      }),
      spec: 'server-server-api/#post_matrixfederationv1get_missing_eventsroomid',
      handler: ({ origin, params, body }) =>
        inbound.missingEvents(origin, params.roomId, {
          earliest: body.earliest_events,
          latest: body.latest_events,
          ...(body.limit !== undefined ? { limit: body.limit } : {}),
          ...(body.min_depth !== undefined ? { minDepth: body.min_depth } : {}),
        }),
    }),
    federationEndpoint(deps, {
      // GET /_matrix/federation/v1/event/{eventId}
      method: 'GET',
      path: '/event/{eventId}',
      versions: ['v1'],
      params: { eventId: eventIdParam },
      spec: 'server-server-api/#get_matrixfederationv1eventeventid',
      handler: ({ origin, params }) => inbound.event(origin, params.eventId),
    }),
    federationEndpoint(deps, {
      // GET /_matrix/federation/v1/state/{roomId}
      method: 'GET',
      path: '/state/{roomId}',
      versions: ['v1'],
      params: { roomId: roomIdParam },
      query: q.object({ event_id: q.string() }),
      spec: 'server-server-api/#get_matrixfederationv1stateroomid',
      handler: ({ origin, params, query }) => inbound.state(origin, params.roomId, query.event_id),
    }),
    federationEndpoint(deps, {
      // GET /_matrix/federation/v1/state_ids/{roomId}
      method: 'GET',
      path: '/state_ids/{roomId}',
      versions: ['v1'],
      params: { roomId: roomIdParam },
      query: q.object({ event_id: q.string() }),
      spec: 'server-server-api/#get_matrixfederationv1state_idsroomid',
      handler: ({ origin, params, query }) => inbound.stateIds(origin, params.roomId, query.event_id),
    }),
    federationEndpoint(deps, {
      // GET /_matrix/federation/v1/event_auth/{roomId}/{eventId}
      method: 'GET',
      path: '/event_auth/{roomId}/{eventId}',
      versions: ['v1'],
      params: { roomId: roomIdParam, eventId: eventIdParam },
      spec: 'server-server-api/#get_matrixfederationv1event_authroomideventid',
      handler: ({ origin, params }) => inbound.eventAuth(origin, params.roomId, params.eventId),
    }),
    federationEndpoint(deps, {
      // GET /_matrix/federation/v1/timestamp_to_event/{roomId}
      method: 'GET',
      path: '/timestamp_to_event/{roomId}',
      versions: ['v1'],
      params: { roomId: roomIdParam },
      query: q.object({ ts: q.int({ min: 0 }), dir: q.enum(['f', 'b'] as const) }),
      spec: 'server-server-api/#get_matrixfederationv1timestamp_to_eventroomid',
      handler: ({ origin, params, query }) =>
        inbound.timestampToEvent(origin, params.roomId, query.ts, query.dir),
    }),
  ];
}
