/**
 * `hearth/core` — the pure Matrix protocol: no I/O, no clocks, no globals. Every
 * signature and hash Hearth makes or checks comes from here.
 */

export * from './auth.ts';
export * from './base64.ts';
export * from './canonical-json.ts';
export * from './crypto.ts';
export * from './errors.ts';
export * from './events.ts';
export * from './identifiers.ts';
export * from './json.ts';
export * from './p2p-identity.ts';
export * from './pdu.ts';
export * from './power-levels.ts';
export * from './redaction.ts';
export * from './room-versions.ts';
export * from './signing.ts';
export * from './state-res/index.ts';
