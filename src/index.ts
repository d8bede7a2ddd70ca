/**
 * `hearth` — the homeserver. Until the homeserver lands, the package root re-exports
 * the protocol core so `import … from 'hearth'` already gives signing and hashing.
 */
export * from './core/index.ts';
