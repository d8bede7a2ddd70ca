/**
 * What the page and the homeserver worker agree on, kept apart from both so the page
 * bundle carries none of the worker's code (and the worker none of the page's).
 */

/** Posted to the worker with a MessagePort: comlink's `HomeserverControl` is exposed on it. */
export const CONTROL_MESSAGE = 'hearth:control';
/** Posted by a page that loaded without a controller (a hard reload): the worker claims it. */
export const CLAIM_MESSAGE = 'hearth:claim';

/** Paths a homeserver answers (client-server-api "API standards", "Server discovery"). */
export function isHomeserverPath(pathname: string): boolean {
  return pathname.startsWith('/_matrix/') || pathname.startsWith('/.well-known/matrix/');
}
