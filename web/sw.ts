/**
 * The demo's Service Worker script, served at `/sw.js`: the whole homeserver. Registration is
 * open, as on a personal server: whoever can open this page owns it.
 */
import { installHomeserverWorker } from '../src/hosts/service-worker.ts';

installHomeserverWorker();
