/**
 * `services.federationInbound` — the event-fetching side of federation as other servers meet
 * it: serving the events of our rooms (serve.ts: backfill, missing events, single events,
 * state, auth chains) and taking in the PDUs they send, fetching what those PDUs lack
 * (receive.ts).
 */
import type { HomeserverContext } from '../context.ts';
import type { RoomsService } from '../rooms/service.ts';
import { createReceiving, type Receiving } from './receive.ts';
import { createEventServing, type EventServing } from './serve.ts';

export type { ReceiveResult } from './receive.ts';
export type { MissingEventsRequest } from './serve.ts';

export interface FederationInboundService extends EventServing, Receiving {}

export function createFederationInboundService(
  ctx: HomeserverContext,
  deps: { rooms: Pick<RoomsService, 'acceptRemote' | 'roomVersionOf' | 'serverAllowed'> },
): FederationInboundService {
  return { ...createEventServing(ctx, deps), ...createReceiving(ctx, deps) };
}
