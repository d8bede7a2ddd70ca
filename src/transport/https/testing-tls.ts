/**
 * Throwaway TLS material for tests, made at test time with Debian's `openssl` CLI in a
 * temporary directory that is removed at once (no key is ever committed): a CA, and
 * certificates it (or another, untrusted CA) signs for the names a test needs.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Pem {
  key: string;
  cert: string;
}

export interface TestCa extends Pem {
  /** A leaf certificate for these subject alternative names (`DNS:localhost`, `IP:127.0.0.1`). */
  issue(altNames: readonly string[]): Pem;
}

function openssl(dir: string, args: string[]): void {
  execFileSync('/usr/bin/openssl', args, { cwd: dir, stdio: 'pipe' });
}

/** A fresh CA (P-256, a day long). */
export function createTestCa(name = 'Hearth test CA'): TestCa {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-tls-'));
  try {
    openssl(dir, [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
      '-days',
      '1',
      '-subj',
      `/CN=${name}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign',
    ]);
    const ca = {
      key: readFileSync(join(dir, 'ca.key'), 'utf8'),
      cert: readFileSync(join(dir, 'ca.crt'), 'utf8'),
    };
    return { ...ca, issue: (altNames) => issue(ca, altNames) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function issue(ca: Pem, altNames: readonly string[]): Pem {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-tls-'));
  try {
    writeFileSync(join(dir, 'ca.key'), ca.key);
    writeFileSync(join(dir, 'ca.crt'), ca.cert);
    writeFileSync(
      join(dir, 'ext.cnf'),
      `subjectAltName=${altNames.join(',')}\nextendedKeyUsage=serverAuth\n`,
    );
    openssl(dir, [
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      'leaf.key',
      '-out',
      'leaf.csr',
      '-subj',
      '/CN=hearth test server',
    ]);
    openssl(dir, [
      'x509',
      '-req',
      '-in',
      'leaf.csr',
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      'leaf.crt',
      '-days',
      '1',
      '-extfile',
      'ext.cnf',
    ]);
    return {
      key: readFileSync(join(dir, 'leaf.key'), 'utf8'),
      cert: readFileSync(join(dir, 'leaf.crt'), 'utf8'),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
