/**
 * The component's host interface, `hearth:homeserver/host` of wasm-bindings/wit/world.wit, as
 * componentize-js presents it to JavaScript (s64 as bigint, `result` errors thrown with the
 * error record as `payload`).
 */
declare module 'hearth:homeserver/host' {
  export type SqlValue =
    | { tag: 'null' }
    | { tag: 'integer'; val: bigint }
    | { tag: 'real'; val: number }
    | { tag: 'text'; val: string }
    | { tag: 'blob'; val: Uint8Array };
  export interface SqlError {
    code: number;
    message: string;
  }
  export function exec(sql: string): void;
  export function query(sql: string, params: SqlValue[]): [string, SqlValue][][];
  export function run(sql: string, params: SqlValue[]): void;
  export function begin(write: boolean): void;
  export function commit(): void;
  export function rollback(): void;
  export function pbkdf2Sha512(
    password: Uint8Array,
    salt: Uint8Array,
    iterations: number,
    length: number,
  ): Uint8Array;
  /** `undefined` (the WIT's `none`): the host offers no Ed25519. */
  export function ed25519PublicKey(seed: Uint8Array): Uint8Array | undefined;
  export function ed25519Sign(seed: Uint8Array, message: Uint8Array): Uint8Array | undefined;
  export function ed25519Verify(
    publicKey: Uint8Array,
    message: Uint8Array,
    signature: Uint8Array,
  ): boolean | undefined;
  export function settings(): [string, string][];
}
