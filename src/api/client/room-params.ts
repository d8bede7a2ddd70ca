/**
 * Path parameter validators shared by the room endpoints: a malformed ID is
 * 400 M_INVALID_PARAM before any handler runs (appendices.md "Identifier Grammar").
 */
import { isValidEventId, isValidRoomAlias, isValidRoomId } from '../../core/index.ts';
import { v } from '../endpoint.ts';

/** A room ID: `!opaque:server` (v1–v11) or a v12 `!hash`. */
export const roomIdParam = v.refine(v.string(), (id) =>
  isValidRoomId(id) ? undefined : 'is not a valid room ID',
);

/** An event ID of any room version. */
export const eventIdParam = v.refine(v.string(), (id) =>
  isValidEventId(id) ? undefined : 'is not a valid event ID',
);

/** A room alias `#localpart:server`. */
export const roomAliasParam = v.refine(v.string(), (alias) =>
  isValidRoomAlias(alias) ? undefined : 'is not a valid room alias (#localpart:server)',
);

/** A room ID or a room alias, as /join and /knock take. */
export const roomIdOrAliasParam = v.refine(v.string(), (id) =>
  isValidRoomId(id) || isValidRoomAlias(id) ? undefined : 'is neither a room ID (!…) nor a room alias (#…)',
);
