/** Server ACL matching (client-server-api modules/server_acls.md, the `m.room.server_acl` schema). */
import { describe, expect, it } from 'vitest';
import { serverAllowed } from '../rooms/server-acl.ts';

describe('serverAllowed', () => {
  it('allows everyone without an ACL and no one with an empty one', () => {
    expect(serverAllowed(null, 'example.org')).toBe(true);
    expect(serverAllowed({}, 'example.org')).toBe(false);
  });

  it('matches globs against the name without its port, deny before allow', () => {
    const acl = { allow: ['*.example.org', 'ex?mple.com'], deny: ['evil.example.org'] };
    expect(serverAllowed(acl, 'chat.example.org')).toBe(true);
    expect(serverAllowed(acl, 'chat.example.org:8448')).toBe(true);
    expect(serverAllowed(acl, 'evil.example.org')).toBe(false);
    expect(serverAllowed(acl, 'exbmple.com')).toBe(true);
    expect(serverAllowed(acl, 'example.org')).toBe(false);
    // Glob characters only: a dot is a dot.
    expect(serverAllowed({ allow: ['a.b'] }, 'axb')).toBe(false);
  });

  it('refuses IP literals when allow_ip_literals is false', () => {
    const acl = { allow: ['*'], allow_ip_literals: false };
    expect(serverAllowed(acl, '1.2.3.4')).toBe(false);
    expect(serverAllowed(acl, '[::1]:8448')).toBe(false);
    expect(serverAllowed({ allow: ['*'] }, '1.2.3.4:8448')).toBe(true);
  });

  it('ignores entries that are not strings', () => {
    expect(serverAllowed({ allow: [1, null, 'ok.org'] as never }, 'ok.org')).toBe(true);
  });
});
