/**
 * X-Matrix authentication of incoming federation requests — server-server-api.md "Request
 * Authentication" — and `federationEndpoint`, which puts it in front of a handler so every
 * authenticated federation endpoint is declared as data, like the client API's, with the
 * checked origin handed to the handler.
 *
 * The check: the `Authorization` header parses as X-Matrix; its `destination`, when given, is
 * this server ("If this property is included, but the value does not match the receiving
 * server's name, the receiving server must deny the request with an HTTP status code
 * `401 Unauthorized`"); the origin's key named by `key` is known and valid now (through the
 * `KeyStore`, which fetches it if needed); and the signature verifies over method, target,
 * origin, destination and the JSON body. Anything wrong is 401 M_UNAUTHORIZED.
 */
import type { JsonObject } from '../../core/canonical-json.ts';
import { verifyJson } from '../../core/signing.ts';
import {
  parseXMatrix,
  X_MATRIX_JSON,
  type XMatrixCredentials,
  xMatrixSignedObject,
} from '../../core/x-matrix.ts';
import type { Clock, Logger } from '../../homeserver/context.ts';
import { isMatrixError, unauthorized } from '../../homeserver/errors.ts';
import type { KeyStore } from '../../homeserver/ports.ts';
import { type ApiVersion, type Endpoint, endpoint, type PathParams } from '../endpoint.ts';
import { DEFAULT_MAX_JSON_BODY, DEFAULT_MAX_JSON_DEPTH, parseJsonObject } from '../http.ts';
import type { QueryValidator, Validator } from '../validate.ts';

export interface XMatrixDeps {
  /** This server's name: the only acceptable `destination`. */
  serverName: string;
  keys: KeyStore;
  clock: Clock;
  /** Where refused requests are reported: an operator wants to see who is knocking with bad signatures. */
  logger?: Pick<Logger, 'warn'>;
  /** Called with the origin of every authenticated request: that server is up (the sender resets its backoff). */
  seen?: (origin: string) => void;
}

/** Step one, before the body is read: the header is X-Matrix and addressed to us. */
export function xMatrixCredentials(request: Request, serverName: string): XMatrixCredentials {
  const header = request.headers.get('authorization');
  if (header === null) throw unauthorized('Missing X-Matrix Authorization header');
  let creds: XMatrixCredentials;
  try {
    creds = parseXMatrix(header);
  } catch (err) {
    throw unauthorized(`Invalid X-Matrix Authorization header: ${(err as Error).message}`);
  }
  if (creds.destination !== undefined && creds.destination !== serverName) {
    throw unauthorized(`This request is for ${creds.destination}, not ${serverName}`);
  }
  return creds;
}

/** Step two: the origin signed exactly this request with a key valid now. */
export async function verifyXMatrix(
  creds: XMatrixCredentials,
  request: { method: string; uri: string; content: JsonObject | undefined },
  deps: XMatrixDeps,
): Promise<void> {
  const keys = await deps.keys.verifyKeys(creds.origin, [creds.key], deps.clock.now());
  if (!keys.has(creds.key)) {
    throw unauthorized(`No valid key ${creds.key} is known for ${creds.origin}`);
  }
  const signed = {
    ...xMatrixSignedObject({
      method: request.method,
      uri: request.uri,
      origin: creds.origin,
      destination: creds.destination,
      content: request.content,
    }),
    signatures: { [creds.origin]: { [creds.key]: creds.sig } },
  };
  try {
    await verifyJson(signed, creds.origin, keys, X_MATRIX_JSON);
  } catch {
    throw unauthorized(`The request's signature by ${creds.origin} does not verify`);
  }
}

/**
 * Authenticates a request whose body (if any) is already parsed; returns the origin.
 * For endpoints declared with `federationEndpoint` the router does this itself.
 */
export async function authenticateXMatrix(
  request: Request,
  content: JsonObject | undefined,
  deps: XMatrixDeps,
): Promise<string> {
  const creds = xMatrixCredentials(request, deps.serverName);
  const url = new URL(request.url);
  await verifyXMatrix(
    creds,
    { method: request.method.toUpperCase(), uri: url.pathname + url.search, content },
    deps,
  );
  return creds.origin;
}

/** What a federation handler is given: checked input and the authenticated origin. */
export interface FederationHandlerRequest<Path extends string, Q, B> {
  params: PathParams<Path>;
  query: Q;
  body: B;
  /** The server that signed the request. */
  origin: string;
  request: Request;
  url: URL;
}

export interface FederationEndpointDef<Path extends string, Q, B> {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** The path after `/_matrix/federation/{version}`, as in `endpoint`. */
  path: Path;
  versions: readonly ApiVersion[];
  /** Default `/_matrix/federation`. */
  base?: string;
  params?: { [K in keyof PathParams<Path>]?: Validator<string> };
  query?: QueryValidator<Q>;
  body?: Validator<B>;
  /** Default: the router's JSON limit (64 KiB). A transaction endpoint raises it. */
  maxBodyBytes?: number;
  spec?: string;
  handler: (req: FederationHandlerRequest<Path, Q, B>) => Promise<object>;
}

export const FEDERATION_BASE = '/_matrix/federation';

/**
 * Declares an X-Matrix authenticated endpoint. The router checks the path and query; the
 * body is taken raw (size-limited) so the signature can be checked over the JSON the origin
 * sent before the endpoint's body validator runs. Order: header and destination (401), body
 * JSON (400), key and signature (401), body shape (400), handler.
 */
export function federationEndpoint<const Path extends string, Q = undefined, B = undefined>(
  deps: XMatrixDeps,
  def: FederationEndpointDef<Path, Q, B>,
): Endpoint {
  return endpoint({
    method: def.method,
    path: def.path,
    versions: def.versions,
    base: def.base ?? FEDERATION_BASE,
    auth: 'none',
    params: def.params,
    query: def.query,
    rawBody: true,
    maxBodyBytes: def.maxBodyBytes ?? DEFAULT_MAX_JSON_BODY,
    spec: def.spec,
    handler: async (req) => {
      let creds: XMatrixCredentials | undefined;
      let content: JsonObject | undefined;
      try {
        creds = xMatrixCredentials(req.request, deps.serverName);
        const bytes = req.bytes ?? new Uint8Array(0);
        // "All POST and PUT endpoints require the requesting server to supply a request body
        // containing a (potentially empty) JSON object"; other methods carry none.
        const hasBody = def.method === 'POST' || def.method === 'PUT';
        content = hasBody ? (parseJsonObject(bytes, DEFAULT_MAX_JSON_DEPTH, false) as JsonObject) : undefined;
        await verifyXMatrix(
          creds,
          { method: def.method, uri: req.url.pathname + req.url.search, content },
          deps,
        );
        deps.seen?.(creds.origin);
      } catch (err) {
        if (isMatrixError(err)) {
          deps.logger?.warn('federation request refused', {
            method: def.method,
            path: req.url.pathname,
            origin: creds?.origin,
            key: creds?.key,
            status: err.status,
            errcode: err.errcode,
            reason: err.message,
          });
        }
        throw err;
      }
      const body = def.body ? def.body.parse(content, '', 'body') : (undefined as B);
      return def.handler({
        params: req.params as PathParams<Path>,
        query: req.query as Q,
        body,
        origin: creds.origin,
        request: req.request,
        url: req.url,
      });
    },
  });
}
