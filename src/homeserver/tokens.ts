/**
 * Pagination and sync tokens. Opaque to clients; exact to us.
 *
 * - A sync token (`s…`) is a position in every stream: `next_batch`, `since`, and the
 *   `prev_batch` of a sync timeline (clients pass that one to /messages).
 * - A topological token (`t…`) is a place in a room's (depth, stream) order: `start`/`end`
 *   of /messages and /context.
 *
 * Typing and presence live in memory, so after a restart a token may name a position the
 * server has not reached; readers treat such a position as "from the beginning".
 */
import type { StreamPositions, TopoToken } from '../storage/store.ts';

export interface SyncPositions extends StreamPositions {
  typing: number;
  presence: number;
}

const SYNC_FIELDS = [
  'events',
  'receipts',
  'accountData',
  'toDevice',
  'deviceLists',
  'typing',
  'presence',
  'partialState',
] as const;

export function formatSyncToken(p: SyncPositions): string {
  return `s${SYNC_FIELDS.map((f) => p[f]).join('_')}`;
}

const NON_NEGATIVE_INT = /^(0|[1-9][0-9]{0,15})$/;
const INT = /^-?(0|[1-9][0-9]{0,15})$/;

/** Null when the token is not a sync token of this server. */
export function parseSyncToken(token: string): SyncPositions | null {
  if (!token.startsWith('s')) return null;
  const parts = token.slice(1).split('_');
  // Tokens made before the partial-state stream (schema v10) have one field less: it reads as 0.
  if (parts.length === SYNC_FIELDS.length - 1) parts.push('0');
  if (parts.length !== SYNC_FIELDS.length || !parts.every((p) => NON_NEGATIVE_INT.test(p))) return null;
  const out = {} as SyncPositions;
  SYNC_FIELDS.forEach((field, i) => {
    out[field] = Number(parts[i]);
  });
  return out;
}

export function formatTopoToken(t: TopoToken): string {
  return `t${t.depth}_${t.stream}`;
}

/** Null when the token is not a topological token. Stream may be negative (backfilled events). */
export function parseTopoToken(token: string): TopoToken | null {
  const match = /^t([^_]+)_([^_]+)$/.exec(token);
  if (!match || !NON_NEGATIVE_INT.test(match[1] as string) || !INT.test(match[2] as string)) return null;
  return { depth: Number(match[1]), stream: Number(match[2]) };
}

/**
 * A place in stream order (`p…`), for the lists paged by position: /relations, /threads,
 * /notifications, /search. `parseStreamToken` also takes a sync token (its events position)
 * and a topological token (its stream part), as relations.yaml allows for `from`/`to`.
 */
export function formatStreamToken(position: number): string {
  return `p${position}`;
}

export function parseStreamToken(token: string): number | null {
  if (token.startsWith('p')) {
    const text = token.slice(1);
    return INT.test(text) ? Number(text) : null;
  }
  return parseTopoToken(token)?.stream ?? parseSyncToken(token)?.events ?? null;
}
