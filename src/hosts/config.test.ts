/**
 * The configuration file: every flag of the table is a key, the extras are checked, a mistake
 * names its key, the command line wins over the file, relative paths start at the file.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseServeArgs, SERVE_FLAGS } from './cli.ts';
import { configKeys, parseConfig } from './config.ts';

const dir = mkdtempSync(join(tmpdir(), 'hearth-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe('hearth serve --config', () => {
  it('reads flags and extras; the command line wins; paths are relative to the file', () => {
    const path = file(
      'hearth.yaml',
      [
        'server_name: example.org',
        'port: 8448',
        'data: ./data',
        'registration: open',
        'federation: off',
        'max_upload_size: 10M',
        'log_level: warn',
        'appservice: [bridges/irc.yaml]',
        'default_room_version: 11',
        'max_request_size: 128K',
        'registration_shared_secret: s3cret',
        'admins: ["@root:example.org"]',
        'registration_tokens: [alpha, {token: beta, uses_allowed: 3, expires_at: 2030-01-01}]',
        'rate_limits:',
        '  exempt_admins: true',
        '  message: {per_second: 2, burst: 4}',
        'turn:',
        '  uris: ["turn:turn.example.org"]',
        '  shared_secret: coturn',
        'support:',
        '  contacts: [{role: m.role.admin, email_address: admin@example.org}]',
      ].join('\n'),
    );
    const options = parseServeArgs(['--config', path, '--port', '9000']);
    expect(options).toMatchObject({
      serverName: 'example.org',
      port: 9000,
      data: join(dir, 'data'),
      registration: 'open',
      federation: false,
      maxUploadBytes: 10 * 1024 * 1024,
      logLevel: 'warn',
      appservices: [join(dir, 'bridges/irc.yaml')],
      defaultRoomVersion: '11',
      maxJsonBodyBytes: 128 * 1024,
      registrationSharedSecret: 's3cret',
      admins: ['@root:example.org'],
      rateLimitExemptAdmins: true,
      rateLimits: { message: { perSecond: 2, burst: 4 } },
      turn: { uris: ['turn:turn.example.org'], sharedSecret: 'coturn', ttlSeconds: 86_400 },
      support: { contacts: [{ role: 'm.role.admin', email_address: 'admin@example.org' }] },
    });
    expect(options.registrationTokens).toEqual([
      { token: 'alpha', usesAllowed: null, expiresAt: null },
      { token: 'beta', usesAllowed: 3, expiresAt: Date.parse('2030-01-01') },
    ]);
  });

  it('knows every flag of the table as a key (a flag added later is a key at once)', () => {
    const keys = configKeys({ ...SERVE_FLAGS, 'made-up-flag': { type: 'string' } });
    for (const flag of Object.keys(SERVE_FLAGS)) {
      if (flag !== 'config') expect(keys).toContain(flag.replaceAll('-', '_'));
    }
    expect(keys).toContain('made_up_flag');
    const withNew = parseConfig('made_up_flag: yes-please\n', join(dir, 'x.yaml'), {
      ...SERVE_FLAGS,
      'made-up-flag': { type: 'string' },
    });
    expect(withNew.argv).toEqual(['--made-up-flag', 'yes-please']);
  });

  it.each([
    ['porte: 8008', /porte: unknown key/],
    ['port: 70000', /port must be 0–65535/],
    ['registration: sometimes', /registration must be open, token or closed/],
    [
      'rate_limits: {message: {per_second: 1, burst: 0}}',
      /rate_limits\.message\.burst: must be a number ≥ 1/,
    ],
    ['rate_limits: {messages: {per_second: 1, burst: 1}}', /rate_limits\.messages: unknown key/],
    ['default_room_version: "99"', /default_room_version: unknown room version 99/],
    ['turn: {uris: [http://x], shared_secret: s}', /turn\.uris\[0\]: must be a turn: or turns: URI/],
    ['admins: [root]', /admins\[0\]: root is not a user ID/],
    ['registration_tokens: ["has space"]', /registration_tokens\[0\]: must be/],
    ['max_request_size: lots', /max_request_size: must be bytes/],
    ['config: other.yaml', /config: unknown key/],
    ['tls_cert: [a, b]', /tls_cert: takes one value/],
    ['- just\n- a list', /must be a mapping/],
    ['port: [', /not valid YAML/],
  ])('refuses %j naming the key', (text, message) => {
    const path = file('bad.yaml', text);
    expect(() => parseServeArgs(['--config', path])).toThrow(message);
    expect(() => parseServeArgs(['--config', path])).toThrow(path);
  });

  it('names a missing file', () => {
    expect(() => parseServeArgs(['--config', join(dir, 'missing.yaml')])).toThrow(/ENOENT/);
  });
});
