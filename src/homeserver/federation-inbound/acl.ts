/**
 * Server ACLs — client-server-api modules/server_acls.md and the `m.room.server_acl` event
 * schema: whether a server may take part in a room. server-server-api.md "Server Access
 * Control Lists (ACLs)" lists the endpoints that must refuse a denied server with 403.
 *
 * 1. no `m.room.server_acl` in the state → allow;
 * 2. an IP literal while `allow_ip_literals` is `false` → deny;
 * 3. matches `deny` → deny;  4. matches `allow` → allow;  5. otherwise deny.
 *
 * Entries are globs (`*` any run of characters, `?` one) matched against the server name
 * without its port ("Port numbers are not supported").
 */
import type { JsonObject } from '../../core/index.ts';

const IPV4 = /^[0-9]{1,3}(\.[0-9]{1,3}){3}$/;

/** The host part of a server name: `[::1]:8448` → `[::1]`, `example.org:80` → `example.org`. */
function hostOf(serverName: string): string {
  if (serverName.startsWith('[')) {
    const end = serverName.indexOf(']');
    return end > 0 ? serverName.slice(0, end + 1) : serverName;
  }
  const colon = serverName.lastIndexOf(':');
  return colon > 0 ? serverName.slice(0, colon) : serverName;
}

function globToRegExp(glob: string): RegExp {
  let source = '';
  for (const ch of glob) {
    if (ch === '*') source += '.*';
    else if (ch === '?') source += '.';
    else source += ch.replace(/[\\^$.|+()[\]{}]/g, '\\$&');
  }
  // Server names are compared case-insensitively, as DNS names are.
  return new RegExp(`^${source}$`, 'is');
}

const globs = (value: unknown): RegExp[] =>
  Array.isArray(value) ? value.filter((x): x is string => typeof x === 'string').map(globToRegExp) : [];

/** Whether `serverName` may take part in a room whose ACL content is `acl` (null: no ACL). */
export function serverAllowed(acl: JsonObject | null, serverName: string): boolean {
  if (acl === null) return true;
  const host = hostOf(serverName);
  const isIpLiteral = IPV4.test(host) || host.startsWith('[');
  if (isIpLiteral && acl.allow_ip_literals === false) return false;
  if (globs(acl.deny).some((re) => re.test(host))) return false;
  return globs(acl.allow).some((re) => re.test(host));
}
