/**
 * Server ACLs — client-server-api "Server Access Control Lists (ACLs) for rooms", the
 * `m.room.server_acl` event schema, and server-server-api.md "Server Access Control Lists":
 * whether a server may talk to us about a room, as a pure function of the room's
 * `m.room.server_acl` content (or its absence).
 *
 * In the schema's order: no ACL event, allow; an IP literal while `allow_ip_literals` is
 * `false`, deny; a `deny` match, deny; an `allow` match, allow; otherwise deny. Patterns are
 * case-insensitive globs (appendices "Glob-style matching": `*` any run of characters, `?`
 * exactly one) matched against the server name without its port.
 */
import type { JsonObject } from '../../core/canonical-json.ts';

/** The host part of a server name: `evil.com:8448` → `evil.com`, `[::1]:8448` → `[::1]`. */
export function hostOf(serverName: string): string {
  if (serverName.startsWith('[')) {
    const end = serverName.indexOf(']');
    return end === -1 ? serverName : serverName.slice(0, end + 1);
  }
  const colon = serverName.lastIndexOf(':');
  return colon === -1 ? serverName : serverName.slice(0, colon);
}

/** An IPv4 dotted quad or a bracketed IPv6 literal (grammar of server names, appendices). */
export function isIpLiteral(host: string): boolean {
  return host.startsWith('[') || /^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** A glob as an anchored, case-insensitive regular expression; every other character literal. */
export function globToRegExp(glob: string): RegExp {
  let source = '';
  for (const ch of glob) {
    if (ch === '*') source += '.*';
    else if (ch === '?') source += '.';
    else source += ch.replace(/[\\^$.|+()[\]{}/-]/g, '\\$&');
  }
  // `s`: `?` and `*` match any character; `u`: `?` is one code point, not one UTF-16 unit.
  return new RegExp(`^${source}$`, 'isu');
}

/** Pre-compiled ACL: build once per ACL event, ask many times (a transaction checks each PDU). */
export interface ServerAcl {
  allows(serverName: string): boolean;
}

/** The string entries of a list field; anything else (absent, not a list, non-strings) counts as none. */
function patterns(value: unknown): RegExp[] {
  if (!Array.isArray(value)) return [];
  return value.filter((p): p is string => typeof p === 'string').map(globToRegExp);
}

/** Compiles `m.room.server_acl` content; `null`/`undefined` (no ACL event) allows everyone. */
export function compileServerAcl(content: JsonObject | null | undefined): ServerAcl {
  if (content === null || content === undefined) return { allows: () => true };
  // "Defaults to true if missing or otherwise not a boolean."
  const allowIpLiterals = content.allow_ip_literals !== false;
  const deny = patterns(content.deny);
  const allow = patterns(content.allow);
  return {
    allows(serverName) {
      const host = hostOf(serverName);
      if (!allowIpLiterals && isIpLiteral(host)) return false;
      if (deny.some((re) => re.test(host))) return false;
      return allow.some((re) => re.test(host));
    },
  };
}

/** Whether `serverName` may take part in a room whose ACL content is `content` (null: none). */
export function serverAllowed(content: JsonObject | null | undefined, serverName: string): boolean {
  return compileServerAcl(content).allows(serverName);
}
