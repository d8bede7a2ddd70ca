/**
 * The ready-made Service Worker script (`dist/browser/hearth-sw.js`): the whole homeserver,
 * configured by its URL — `hearth-sw.js?server_name=…&registration=…&origins=…`, which
 * `registerHomeserver` writes. Serve it from the origin's root (or with
 * `Service-Worker-Allowed: /`) so it may answer `/_matrix/*`.
 */
import { installHomeserverWorker } from './service-worker.ts';

installHomeserverWorker();
