/** Push rules, their evaluation and pushers — client-server-api "Push Notifications". */
export * from './evaluate.ts';
export * from './glob.ts';
export * from './rules.ts';
export * from './service.ts';
