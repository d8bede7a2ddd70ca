import { describe, expect, it } from 'vitest';
import { compileServerAcl, globToRegExp, hostOf, isIpLiteral, serverAllowed } from './server-acl.ts';

describe('hostOf: the server name without its port', () => {
  it.each([
    ['evil.com', 'evil.com'],
    ['evil.com:8448', 'evil.com'],
    ['1.2.3.4:80', '1.2.3.4'],
    ['[::1]', '[::1]'],
    ['[::1]:8448', '[::1]'],
    ['[2001:db8::1]:1', '[2001:db8::1]'],
  ])('%s → %s', (name, host) => expect(hostOf(name)).toBe(host));
});

describe('isIpLiteral', () => {
  it.each([
    ['1.2.3.4', true],
    ['[::1]', true],
    ['[2001:db8::1]', true],
    ['1.2.3.4.example', false],
    ['example.com', false],
    ['123', false],
  ])('%s → %s', (host, ip) => expect(isIpLiteral(host)).toBe(ip));
});

describe('globs', () => {
  it.each([
    ['*', 'anything.at.all', true],
    ['*', '', true],
    ['*.example.com', 'a.example.com', true],
    ['*.example.com', 'a.b.example.com', true],
    ['*.example.com', 'example.com', false],
    ['*example.com', 'example.com', true],
    ['ex?mple.com', 'example.com', true],
    ['ex?mple.com', 'exmple.com', false],
    ['ex?mple.com', 'exaample.com', false],
    ['EXAMPLE.com', 'example.COM', true],
    // Regular-expression characters are literal.
    ['example.com', 'exampleXcom', false],
    ['a+b.com', 'a+b.com', true],
    ['a+b.com', 'aab.com', false],
    ['[::1]', '[::1]', true],
    ['(x|y).com', 'x.com', false],
    ['^a$', '^a$', true],
    ['back\\slash', 'back\\slash', true],
    // `?` is one character, even outside the BMP.
    ['?.com', '😀.com', true],
    ['1.2.3.*', '1.2.3.4', true],
  ])('%s against %s → %s', (glob, host, matches) => expect(globToRegExp(glob).test(host)).toBe(matches));
});

describe('serverAllowed, in the schema’s order', () => {
  it('allows everyone without an ACL event', () => {
    expect(serverAllowed(null, 'evil.com')).toBe(true);
    expect(serverAllowed(undefined, '1.2.3.4')).toBe(true);
  });

  it('denies everyone with an empty ACL (no allow list is an empty one)', () => {
    expect(serverAllowed({}, 'good.com')).toBe(false);
    expect(serverAllowed({ deny: [] }, 'good.com')).toBe(false);
  });

  it('deny wins over allow', () => {
    const acl = { allow: ['*'], deny: ['evil.com', '*.evil.com'] };
    expect(serverAllowed(acl, 'good.com')).toBe(true);
    expect(serverAllowed(acl, 'evil.com')).toBe(false);
    expect(serverAllowed(acl, 'sub.evil.com')).toBe(false);
    expect(serverAllowed(acl, 'notevil.com')).toBe(true);
  });

  it('ignores the port: evil.com, evil.com:8448 and evil.com:1234 are one server', () => {
    const acl = { allow: ['*'], deny: ['evil.com'] };
    for (const name of ['evil.com', 'evil.com:8448', 'evil.com:1234'])
      expect(serverAllowed(acl, name)).toBe(false);
    // A pattern naming a port matches nothing: the port is never part of what is matched.
    expect(serverAllowed({ allow: ['good.com:8448'] }, 'good.com:8448')).toBe(false);
  });

  it('allows only what the allow list names', () => {
    const acl = { allow: ['*.example.org', 'friend.net'] };
    expect(serverAllowed(acl, 'matrix.example.org')).toBe(true);
    expect(serverAllowed(acl, 'friend.net:443')).toBe(true);
    expect(serverAllowed(acl, 'stranger.net')).toBe(false);
  });

  it('is case-insensitive', () => {
    expect(serverAllowed({ allow: ['*'], deny: ['EVIL.com'] }, 'evil.COM')).toBe(false);
    expect(serverAllowed({ allow: ['Friend.NET'] }, 'friend.net')).toBe(true);
  });

  it('denies IP literals when allow_ip_literals is false, before looking at allow', () => {
    const acl = { allow: ['*'], allow_ip_literals: false };
    expect(serverAllowed(acl, '1.2.3.4')).toBe(false);
    expect(serverAllowed(acl, '1.2.3.4:8448')).toBe(false);
    expect(serverAllowed(acl, '[::1]:8448')).toBe(false);
    expect(serverAllowed(acl, 'example.com')).toBe(true);
    expect(serverAllowed({ allow: ['1.2.3.4'], allow_ip_literals: false }, '1.2.3.4')).toBe(false);
  });

  it('allows IP literals when allow_ip_literals is true, absent or not a boolean', () => {
    for (const allowIp of [true, undefined, 'false', 0, null]) {
      const acl = { allow: ['*'], ...(allowIp === undefined ? {} : { allow_ip_literals: allowIp }) };
      expect(serverAllowed(acl, '1.2.3.4')).toBe(true);
    }
  });

  it('ignores entries that are not strings, and lists that are not lists', () => {
    expect(serverAllowed({ allow: [1, null, { x: 1 }, 'ok.com'] }, 'ok.com')).toBe(true);
    expect(serverAllowed({ allow: [1, null] }, 'ok.com')).toBe(false);
    expect(serverAllowed({ allow: '*' }, 'ok.com')).toBe(false);
    expect(serverAllowed({ allow: ['*'], deny: 'ok.com' }, 'ok.com')).toBe(true);
  });

  it('compiles once and answers many', () => {
    const acl = compileServerAcl({ allow: ['*'], deny: ['bad.*'] });
    expect(['good.org', 'bad.org', 'bad.com', 'notbad.org'].map((s) => acl.allows(s))).toEqual([
      true,
      false,
      false,
      true,
    ]);
  });
});
