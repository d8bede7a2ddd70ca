import { describe, expect, it } from 'vitest';
import {
  createDiscovery,
  orderSrv,
  SRV_CACHE_MS,
  type SrvRecord,
  WELL_KNOWN_DEFAULT_CACHE_MS,
  WELL_KNOWN_MAX_CACHE_MS,
  type WellKnownAnswer,
  wellKnownCacheMs,
} from './discovery.ts';

const HOUR = 60 * 60 * 1000;

/** A discovery over fixed DNS and `.well-known` answers; records every lookup made. */
function setUp(opts: {
  wellKnown?: Record<string, WellKnownAnswer | 'error'>;
  srv?: Record<string, SrvRecord[]>;
}) {
  let now = 1_000_000;
  const lookups: string[] = [];
  const discovery = createDiscovery({
    clock: { now: () => now },
    random: () => 0,
    srv: {
      async resolveSrv(name) {
        lookups.push(`SRV ${name}`);
        return opts.srv?.[name] ?? [];
      },
    },
    wellKnown: async (hostname) => {
      lookups.push(`well-known ${hostname}`);
      const answer = opts.wellKnown?.[hostname];
      if (answer === undefined || answer === 'error') throw new Error('connection refused');
      return answer;
    },
  });
  return {
    discovery,
    lookups,
    advance(ms: number) {
      now += ms;
    },
  };
}

const delegate = (to: unknown, headers: Record<string, string> = {}, status = 200): WellKnownAnswer => ({
  status,
  headers: new Headers(headers),
  body: new TextEncoder().encode(
    typeof to === 'string' ? JSON.stringify({ 'm.server': to }) : JSON.stringify(to),
  ),
});

const srv = (name: string, port: number, priority = 10, weight = 0): SrvRecord => ({
  name,
  port,
  priority,
  weight,
});

describe('server discovery (server-server-api "Resolving server names")', () => {
  it('1. an IP literal: that address, the given port or 8448, Host the server name, certificate for the IP', async () => {
    const { discovery, lookups } = setUp({});
    expect(await discovery.resolve('1.2.3.4')).toEqual({
      targets: [{ host: '1.2.3.4', port: 8448 }],
      hostHeader: '1.2.3.4',
      tlsName: '1.2.3.4',
      tlsNameIsIp: true,
    });
    expect(await discovery.resolve('[::1]:1234')).toEqual({
      targets: [{ host: '::1', port: 1234 }],
      hostHeader: '[::1]:1234',
      tlsName: '::1',
      tlsNameIsIp: true,
    });
    expect(lookups).toEqual([]);
  });

  it('2. a hostname with a port: that host and port, Host with the port, certificate for the hostname', async () => {
    const { discovery, lookups } = setUp({});
    expect(await discovery.resolve('example.org:8449')).toEqual({
      targets: [{ host: 'example.org', port: 8449 }],
      hostHeader: 'example.org:8449',
      tlsName: 'example.org',
      tlsNameIsIp: false,
    });
    expect(lookups).toEqual([]);
  });

  it('3.1 delegated to an IP literal: Host is the IP, with the port if given', async () => {
    const { discovery } = setUp({ wellKnown: { 'example.org': delegate('10.0.0.1:9000') } });
    expect(await discovery.resolve('example.org')).toEqual({
      targets: [{ host: '10.0.0.1', port: 9000 }],
      hostHeader: '10.0.0.1:9000',
      tlsName: '10.0.0.1',
      tlsNameIsIp: true,
    });
  });

  it('3.2 delegated to a hostname with a port: no SRV lookup, certificate for the delegated name', async () => {
    const { discovery, lookups } = setUp({
      wellKnown: { 'example.org': delegate('matrix.example.net:443') },
    });
    expect(await discovery.resolve('example.org')).toEqual({
      targets: [{ host: 'matrix.example.net', port: 443 }],
      hostHeader: 'matrix.example.net:443',
      tlsName: 'matrix.example.net',
      tlsNameIsIp: false,
    });
    expect(lookups).toEqual(['well-known example.org']);
  });

  it('3.3 delegated to a bare hostname: SRV _matrix-fed._tcp of the delegated name, Host the delegated name', async () => {
    const { discovery, lookups } = setUp({
      wellKnown: { 'example.org': delegate('matrix.example.net') },
      srv: { '_matrix-fed._tcp.matrix.example.net': [srv('fed1.example.net.', 8443)] },
    });
    expect(await discovery.resolve('example.org')).toEqual({
      targets: [{ host: 'fed1.example.net', port: 8443 }],
      hostHeader: 'matrix.example.net',
      tlsName: 'matrix.example.net',
      tlsNameIsIp: false,
    });
    // Never a second `.well-known` for the delegated name.
    expect(lookups).toEqual(['well-known example.org', 'SRV _matrix-fed._tcp.matrix.example.net']);
  });

  it('3.4 then the deprecated _matrix._tcp, 3.5 then port 8448', async () => {
    const deprecated = setUp({
      wellKnown: { 'example.org': delegate('matrix.example.net') },
      srv: { '_matrix._tcp.matrix.example.net': [srv('old.example.net', 8000)] },
    });
    expect((await deprecated.discovery.resolve('example.org')).targets).toEqual([
      { host: 'old.example.net', port: 8000 },
    ]);
    const none = setUp({ wellKnown: { 'example.org': delegate('matrix.example.net') } });
    expect(await none.discovery.resolve('example.org')).toEqual({
      targets: [{ host: 'matrix.example.net', port: 8448 }],
      hostHeader: 'matrix.example.net',
      tlsName: 'matrix.example.net',
      tlsNameIsIp: false,
    });
    expect(none.lookups).toEqual([
      'well-known example.org',
      'SRV _matrix-fed._tcp.matrix.example.net',
      'SRV _matrix._tcp.matrix.example.net',
    ]);
  });

  it('4. no .well-known: SRV _matrix-fed._tcp of the server name, Host and certificate the server name', async () => {
    const { discovery } = setUp({
      srv: {
        '_matrix-fed._tcp.example.org': [srv('b.example.org', 8448, 20), srv('a.example.org', 443, 10)],
      },
    });
    expect(await discovery.resolve('example.org')).toEqual({
      targets: [
        { host: 'a.example.org', port: 443 },
        { host: 'b.example.org', port: 8448 },
      ],
      hostHeader: 'example.org',
      tlsName: 'example.org',
      tlsNameIsIp: false,
    });
  });

  it('5. then the deprecated _matrix._tcp, 6. then port 8448 on the server name', async () => {
    const deprecated = setUp({ srv: { '_matrix._tcp.example.org': [srv('old.example.org', 8000)] } });
    expect((await deprecated.discovery.resolve('example.org')).targets).toEqual([
      { host: 'old.example.org', port: 8000 },
    ]);
    const none = setUp({});
    expect(await none.discovery.resolve('example.org')).toEqual({
      targets: [{ host: 'example.org', port: 8448 }],
      hostHeader: 'example.org',
      tlsName: 'example.org',
      tlsNameIsIp: false,
    });
  });

  it.each([
    ['a 404', delegate('x.example.net', {}, 404)],
    ['no m.server', delegate({ other: 1 })],
    ['an m.server that is no server name', delegate('not a name')],
    [
      'a body that is not JSON',
      { status: 200, headers: new Headers(), body: new TextEncoder().encode('<html>') },
    ],
  ])('treats .well-known with %s as an error and goes on to SRV', async (_why, answer) => {
    const { discovery, lookups } = setUp({ wellKnown: { 'example.org': answer } });
    expect((await discovery.resolve('example.org')).hostHeader).toBe('example.org');
    expect(lookups).toContain('SRV _matrix-fed._tcp.example.org');
  });

  it('refuses an SRV answer of "." (the service is not available there)', async () => {
    const { discovery } = setUp({ srv: { '_matrix-fed._tcp.example.org': [srv('.', 0)] } });
    await expect(discovery.resolve('example.org')).rejects.toMatchObject({ name: 'TransportError' });
  });

  it('reuses SRV answers, records or none, for ten minutes', async () => {
    const t = setUp({ srv: { '_matrix-fed._tcp.example.org': [srv('a.example.org', 443)] } });
    await t.discovery.resolve('example.org');
    await t.discovery.resolve('other.example');
    t.advance(SRV_CACHE_MS - 1);
    await t.discovery.resolve('example.org');
    await t.discovery.resolve('other.example');
    const srvLookups = () => t.lookups.filter((l) => l.startsWith('SRV'));
    expect(srvLookups()).toEqual([
      'SRV _matrix-fed._tcp.example.org',
      'SRV _matrix-fed._tcp.other.example',
      'SRV _matrix._tcp.other.example',
    ]);
    t.advance(1);
    await t.discovery.resolve('example.org');
    expect(srvLookups().length).toBe(4);
  });

  it('caches .well-known for 24 hours by default', async () => {
    const t = setUp({ wellKnown: { 'example.org': delegate('m.example.net:1') } });
    await t.discovery.resolve('example.org');
    t.advance(WELL_KNOWN_DEFAULT_CACHE_MS - 1);
    await t.discovery.resolve('example.org');
    expect(t.lookups).toEqual(['well-known example.org']);
    t.advance(1);
    await t.discovery.resolve('example.org');
    expect(t.lookups).toEqual(['well-known example.org', 'well-known example.org']);
  });

  it('caches .well-known errors, backing off up to an hour', async () => {
    const t = setUp({ wellKnown: { 'example.org': 'error' } });
    const fetches = () => t.lookups.filter((l) => l.startsWith('well-known')).length;
    await t.discovery.resolve('example.org');
    t.advance(2 * 60 * 1000 - 1);
    await t.discovery.resolve('example.org');
    expect(fetches()).toBe(1);
    t.advance(1);
    await t.discovery.resolve('example.org');
    expect(fetches()).toBe(2);
    // The second failure in a row is remembered for 4 minutes.
    t.advance(4 * 60 * 1000 - 1);
    await t.discovery.resolve('example.org');
    expect(fetches()).toBe(2);
    for (let i = 0; i < 10; i++) {
      t.advance(HOUR);
      await t.discovery.resolve('example.org');
    }
    expect(fetches()).toBe(12);
    // Never remembered for more than an hour.
    t.advance(HOUR - 1);
    await t.discovery.resolve('example.org');
    expect(fetches()).toBe(12);
    t.advance(1);
    await t.discovery.resolve('example.org');
    expect(fetches()).toBe(13);
  });
});

describe('wellKnownCacheMs', () => {
  const at = 1_700_000_000_000;
  it.each([
    [{}, WELL_KNOWN_DEFAULT_CACHE_MS],
    [{ 'cache-control': 'public, max-age=3600' }, HOUR],
    [{ 'cache-control': 'max-age=604800' }, WELL_KNOWN_MAX_CACHE_MS],
    [{ 'cache-control': 'no-store' }, 0],
    [{ 'cache-control': 'no-cache' }, 0],
    [{ expires: new Date(at + 2 * HOUR).toUTCString() }, 2 * HOUR],
    [{ expires: '0' }, 0],
    [{ 'cache-control': 'max-age=60', expires: new Date(at + 2 * HOUR).toUTCString() }, 60_000],
  ])('%j → %d ms', (headers, expected) => {
    expect(wellKnownCacheMs(new Headers(headers), at)).toBe(expected);
  });
});

describe('orderSrv', () => {
  it('puts lower priorities first and picks by weight within one', () => {
    const records = [srv('c', 1, 20), srv('a', 1, 10, 0), srv('b', 1, 10, 100)];
    // random() = 0.5 of (100 + 1): the running weight 0 of "a" is below, 100 of "b" reaches it.
    expect(orderSrv(records, () => 0.5).map((r) => r.name)).toEqual(['b', 'a', 'c']);
    expect(orderSrv(records, () => 0).map((r) => r.name)).toEqual(['a', 'b', 'c']);
  });
});
