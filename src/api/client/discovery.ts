/**
 * Discovery — client-server-api/_index.md "Well-known URIs" and "API Versions"
 * (data/api/client-server/wellknown.yaml, versions.yaml).
 */
import type { JsonObject } from '../../core/canonical-json.ts';
import { notFound } from '../../homeserver/errors.ts';
import { type Endpoint, endpoint } from '../endpoint.ts';

/**
 * Every Client-Server spec version, oldest first: the individually versioned r0 releases
 * (changelog/historical.md), then the global versions from v1.1 (`v1.0` is never advertised,
 * _index.md "Legacy versioning").
 */
export const SPEC_VERSIONS: readonly string[] = [
  'r0.0.0',
  'r0.0.1',
  'r0.1.0',
  'r0.2.0',
  'r0.3.0',
  'r0.4.0',
  'r0.5.0',
  'r0.6.0',
  'r0.6.1',
  ...Array.from({ length: 19 }, (_, i) => `v1.${i + 1}`),
];

/** The versions claimed unless configured otherwise: everything up to v1.16. */
export const DEFAULT_VERSIONS: readonly string[] = SPEC_VERSIONS.slice(0, SPEC_VERSIONS.indexOf('v1.16') + 1);

export interface DiscoveryConfig {
  /** Versions for `/versions`; default `DEFAULT_VERSIONS`. */
  versions?: readonly string[];
  /** `unstable_features` for `/versions`, e.g. `{ 'org.matrix.msc3916.stable': true }`. */
  unstableFeatures?: Readonly<Record<string, boolean>>;
  /**
   * `m.homeserver.base_url` for `/.well-known/matrix/client`. Without it the origin the request
   * arrived on is used — right for a Service Worker or a server reached on its own name.
   * `null` serves no well-known document (404, which clients read as "no discovery").
   */
  baseUrl?: string | null;
  /** `m.identity_server.base_url`, if any. */
  identityServer?: string;
  /** Further namespaced keys for the well-known document (Java package naming). */
  wellKnownExtra?: Readonly<JsonObject>;
}

export function discoveryEndpoints(config: DiscoveryConfig = {}): Endpoint[] {
  const versions = [...(config.versions ?? DEFAULT_VERSIONS)];
  const unstable = { ...config.unstableFeatures };
  return [
    endpoint({
      // GET /_matrix/client/versions
      method: 'GET',
      path: '/_matrix/client/versions',
      // A token may be sent so the server can tailor unstable features (v1.10); not required.
      auth: 'optional',
      guest: true,
      spec: 'client-server-api/#get_matrixclientversions',
      handler: async () => ({ versions, unstable_features: unstable }),
    }),
    endpoint({
      // GET /.well-known/matrix/client
      method: 'GET',
      path: '/.well-known/matrix/client',
      auth: 'none',
      spec: 'client-server-api/#getwell-knownmatrixclient',
      handler: async ({ url }) => {
        if (config.baseUrl === null) {
          throw notFound('This server publishes no client discovery information');
        }
        const doc: JsonObject = {
          ...config.wellKnownExtra,
          'm.homeserver': { base_url: config.baseUrl ?? url.origin },
        };
        if (config.identityServer !== undefined)
          doc['m.identity_server'] = { base_url: config.identityServer };
        return doc;
      },
    }),
  ];
}
