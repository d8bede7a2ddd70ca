/**
 * Evaluated first in the WASI component (the first import of wasi.ts). componentize-js runs
 * the module's top level once at build time (Wizer), where calling a WASI import traps the
 * build; `@noble/curves` probes `crypto.getRandomValues` at load to decide on scalar blinding.
 * Until the first request, randomness throws instead (noble then signs without blinding, the
 * same signatures: ed25519 is deterministic); from the first request on it is the host's.
 */
const cryptoObject = globalThis.crypto;
const getRandomValues = cryptoObject.getRandomValues.bind(cryptoObject);
let snapshotting = true;

Object.defineProperty(cryptoObject, 'getRandomValues', {
  configurable: true,
  value: <T extends ArrayBufferView | null>(array: T): T => {
    if (snapshotting) throw new Error('no randomness while the component is being built');
    return getRandomValues(array as never) as T;
  },
});

/** Called by the fetch listener: the component is running, with the host's randomness. */
export function running(): void {
  snapshotting = false;
}
