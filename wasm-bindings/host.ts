/**
 * The host side of `hearth:homeserver/host` (wit/world.wit) for `jco serve`, which loads it in
 * place of the component's import (`--jco-map hearth:homeserver/host=<this file>`): the
 * component's SQL on `node:sqlite` in `$HEARTH_DATA/hearth.sqlite` (the driver `hearth serve`
 * uses: WAL, so the one-request instances `jco serve` runs side by side share it safely),
 * PBKDF2 and Ed25519 from node:crypto, and the process's HEARTH_* environment as settings.
 *
 * Another WASI host (wasmtime, Spin, …) would provide the same groups of functions.
 */

import type * as Host from 'hearth:homeserver/host';
import { createPrivateKey, createPublicKey, pbkdf2Sync, sign, verify } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { SqlDriver, SqlValue } from '../src/storage/sqlite/engine.ts';
import { nodeSqliteDriver } from '../src/storage/sqlite/index.ts';

let opened: SqlDriver | undefined;

function driver(): SqlDriver {
  if (!opened) {
    const dir = process.env.HEARTH_DATA;
    if (!dir) throw { payload: { code: 1, message: 'HEARTH_DATA (the data folder) is not set' } };
    mkdirSync(dir, { recursive: true });
    opened = nodeSqliteDriver({ path: join(dir, 'hearth.sqlite') });
    // The driver's own durability in WAL mode is its asynchronous `sync` after COMMIT, which
    // the WIT's synchronous `commit` cannot wait for: SQLite's FULL makes COMMIT itself durable.
    opened.exec('PRAGMA synchronous = FULL');
  }
  return opened;
}

/** SQLite's errors, as the WIT `sql-error`; `jco` passes a thrown `payload` as the `err` case. */
function guarded<T>(fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    if ((error as { payload?: unknown }).payload) throw error;
    const errcode = (error as { errcode?: unknown }).errcode;
    throw {
      payload: {
        code: typeof errcode === 'number' ? errcode : 1,
        message: error instanceof Error ? error.message : String(error),
      },
    };
  }
}

function toSql(value: Host.SqlValue): SqlValue {
  switch (value.tag) {
    case 'null':
      return null;
    case 'integer':
      return Number(value.val);
    default:
      return value.val;
  }
}

function fromSql(value: unknown): Host.SqlValue {
  if (value === null || value === undefined) return { tag: 'null' };
  if (typeof value === 'string') return { tag: 'text', val: value };
  if (value instanceof Uint8Array) return { tag: 'blob', val: value };
  if (typeof value === 'bigint') return { tag: 'integer', val: value };
  const n = value as number;
  return Number.isSafeInteger(n) ? { tag: 'integer', val: BigInt(n) } : { tag: 'real', val: n };
}

export function exec(sql: string): void {
  guarded(() => driver().exec(sql));
}

export function query(sql: string, params: Host.SqlValue[]): [string, Host.SqlValue][][] {
  return guarded(() =>
    driver()
      .all(sql, params.map(toSql))
      .map((row) =>
        Object.entries(row).map(([name, value]): [string, Host.SqlValue] => [name, fromSql(value)]),
      ),
  );
}

export function run(sql: string, params: Host.SqlValue[]): void {
  guarded(() => driver().run(sql, params.map(toSql)));
}

export function begin(write: boolean): void {
  guarded(() => driver().begin(write ? 'write' : 'read'));
}

export function commit(): void {
  guarded(() => driver().commit());
}

export function rollback(): void {
  try {
    driver().rollback();
  } catch {
    // Nothing to roll back.
  }
}

export function pbkdf2Sha512(
  password: Uint8Array,
  salt: Uint8Array,
  iterations: number,
  length: number,
): Uint8Array {
  return new Uint8Array(pbkdf2Sync(password, salt, iterations, length, 'sha512'));
}

/** RFC 8410's PKCS#8 and SPKI wrappings of raw Ed25519 keys, as node:crypto imports them. */
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex');

const privateKey = (seed: Uint8Array) =>
  createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, seed]), format: 'der', type: 'pkcs8' });

export function ed25519PublicKey(seed: Uint8Array): Uint8Array {
  const spki = createPublicKey(privateKey(seed)).export({ format: 'der', type: 'spki' });
  return new Uint8Array(spki.subarray(SPKI_ED25519.length));
}

export function ed25519Sign(seed: Uint8Array, message: Uint8Array): Uint8Array {
  return new Uint8Array(sign(null, message, privateKey(seed)));
}

export function ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (publicKey.length !== 32 || signature.length !== 64) return false;
  try {
    const key = createPublicKey({
      key: Buffer.concat([SPKI_ED25519, publicKey]),
      format: 'der',
      type: 'spki',
    });
    return verify(null, message, key, signature);
  } catch {
    return false; // not a curve point
  }
}

export function settings(): [string, string][] {
  return Object.entries(process.env).filter(
    (entry): entry is [string, string] => entry[0].startsWith('HEARTH_') && typeof entry[1] === 'string',
  );
}
