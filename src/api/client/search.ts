/**
 * Server-side search (search.yaml, `POST /search`) and the user directory (users.yaml,
 * `POST /user_directory/search`). Behaviour is in src/homeserver/search.ts.
 */
import type { Services } from '../../homeserver/services.ts';
import { type Endpoint, endpoint, q, v } from '../endpoint.ts';
import { roomEventFilterValidator } from './filter.ts';

/** A search term longer than this finds nothing a shorter one would not (and costs more). */
const MAX_TERM_LENGTH = 1000;

const roomEvents = v.object({
  search_term: v.string({ max: MAX_TERM_LENGTH }),
  keys: v.optional(v.array(v.enum(['content.body', 'content.name', 'content.topic'] as const), { max: 3 })),
  filter: v.optional(roomEventFilterValidator),
  order_by: v.optional(v.enum(['recent', 'rank'] as const)),
  event_context: v.optional(
    v.object({
      before_limit: v.optional(v.int({ min: 0 })),
      after_limit: v.optional(v.int({ min: 0 })),
      include_profile: v.optional(v.bool()),
    }),
  ),
  include_state: v.optional(v.bool()),
  groupings: v.optional(
    v.object({
      group_by: v.optional(
        v.array(v.object({ key: v.optional(v.enum(['room_id', 'sender'] as const)) }), { max: 2 }),
      ),
    }),
  ),
});

export function searchEndpoints(services: Services): Endpoint[] {
  const { search } = services;
  return [
    endpoint({
      // POST /_matrix/client/v3/search
      method: 'POST',
      path: '/search',
      versions: ['r0', 'v3'],
      auth: 'required',
      query: q.object({ next_batch: q.optional(q.string()) }),
      body: v.object({ search_categories: v.object({ room_events: v.optional(roomEvents) }) }),
      spec: 'client-server-api/#post_matrixclientv3search',
      handler: async ({ body, query, auth }) => {
        const criteria = body.search_categories.room_events;
        // Only room events can be searched (search.yaml): no category asked, nothing found.
        if (!criteria) return { search_categories: {} };
        return search.search(auth, criteria, query.next_batch);
      },
    }),
    endpoint({
      // POST /_matrix/client/v3/user_directory/search
      method: 'POST',
      path: '/user_directory/search',
      versions: ['r0', 'v3'],
      auth: 'required',
      body: v.object({
        search_term: v.string({ max: MAX_TERM_LENGTH }),
        limit: v.optional(v.int({ min: 0 })),
      }),
      spec: 'client-server-api/#post_matrixclientv3user_directorysearch',
      handler: async ({ body, auth }) => search.userDirectory(auth.userId, body.search_term, body.limit),
    }),
  ];
}
