/**
 * User-Interactive Authentication — client-server-api/_index.md "User-Interactive
 * Authentication API" (definitions/auth_data.yaml, auth_response.yaml).
 *
 * A request without `auth` gets a 401 naming the flows and a new `session`; each later request
 * of the same operation completes one stage (`auth.type`) of some flow, in order. When every
 * stage of one flow is complete, `authenticate` returns and the operation runs. Sessions are
 * kept in the store, so a Service Worker stopped between two stages loses nothing.
 *
 * A session belongs to one operation (register, change password, delete devices …) and, once
 * known, to one user: a session obtained for one call cannot authorise another.
 */

import type { JsonObject, JsonValue } from '../../core/canonical-json.ts';
import { type HomeserverContext, randomString } from '../context.ts';
import { badJson, forbidden, MatrixError } from '../errors.ts';

/** How long a UIA session lives: enough to type a password or fetch a registration token. */
export const UIA_SESSION_LIFETIME_MS = 30 * 60 * 1000;

export const DUMMY = 'm.login.dummy';
export const PASSWORD = 'm.login.password';
export const REGISTRATION_TOKEN = 'm.login.registration_token';

/** The 401 body: what the client must do next. */
export interface UiaState {
  flows: { stages: string[] }[];
  params: JsonObject;
  session: string;
  completed?: string[];
}

/**
 * The 401 answer of a UIA endpoint. Without `errcode` it is a plain challenge ("here is what to
 * do"), which the spec sends without `errcode`/`error`; with one, a failed stage the client
 * may retry.
 */
export class UiaChallenge extends MatrixError {
  readonly state: UiaState;
  readonly failure: { errcode: string; error: string } | undefined;

  constructor(state: UiaState, failure?: { errcode: string; error: string }) {
    super(
      401,
      failure?.errcode ?? 'M_UNAUTHORIZED',
      failure?.error ?? 'Additional authentication is required',
    );
    this.state = state;
    this.failure = failure;
  }

  override toJSON(): JsonObject {
    const body: JsonObject = {
      flows: this.state.flows.map((f) => ({ stages: [...f.stages] })),
      params: this.state.params,
      session: this.state.session,
    };
    if (this.state.completed && this.state.completed.length > 0) body.completed = [...this.state.completed];
    if (this.failure) {
      body.errcode = this.failure.errcode;
      body.error = this.failure.error;
    }
    return body;
  }
}

/** What a stage handler learns: the user it proved, and data to keep in the session. */
export interface StageResult {
  userId?: string;
  remember?: JsonObject;
}

/**
 * Checks one stage's auth dict. Throws a MatrixError: 401/403 ones (wrong password, unknown
 * token) become a retryable 401 challenge; others (a malformed dict) are answered as they are.
 */
export type StageHandler = (auth: JsonObject, session: { userId: string | null }) => Promise<StageResult>;

export interface UiaRequest {
  /** The operation the session is for, e.g. `register`, `delete_devices`. */
  operation: string;
  /** The authenticated user, when the request carried an access token. */
  userId: string | null;
  /** Alternatives, each a list of stages to complete in order. */
  flows: readonly (readonly string[])[];
  params?: JsonObject;
  /** The request's `auth` dict, if it had one. */
  auth: JsonObject | undefined;
}

export interface UiaSuccess {
  sessionId: string;
  /** The user the session proved (the authenticated one, or one a password stage named). */
  userId: string | null;
  /** Data stage handlers asked to remember (e.g. the registration token used). */
  remembered: JsonObject;
}

interface SessionData {
  operation: string;
  userId: string | null;
  completed: string[];
  remembered: JsonObject;
}

function toSessionData(raw: JsonObject): SessionData | null {
  const { operation, userId, completed, remembered } = raw;
  if (typeof operation !== 'string') return null;
  if (userId !== null && typeof userId !== 'string') return null;
  if (!Array.isArray(completed) || !completed.every((s) => typeof s === 'string')) return null;
  if (typeof remembered !== 'object' || remembered === null || Array.isArray(remembered)) return null;
  return { operation, userId, completed: completed as string[], remembered: remembered as JsonObject };
}

/** Whether `completed` is exactly one whole flow. */
function flowDone(flows: UiaRequest['flows'], completed: readonly string[]): boolean {
  return flows.some((f) => f.length === completed.length && f.every((stage, i) => completed[i] === stage));
}

/** Whether `stage` may come next after `completed` in some flow. */
function stageAllowed(flows: UiaRequest['flows'], completed: readonly string[], stage: string): boolean {
  return flows.some(
    (f) =>
      f.length > completed.length && completed.every((s, i) => f[i] === s) && f[completed.length] === stage,
  );
}

export interface Uia {
  /**
   * Runs the UIA protocol for one request: resolves when a flow is complete, throws a
   * `UiaChallenge` (401) otherwise. Call `finish` once the operation has succeeded.
   */
  authenticate(request: UiaRequest): Promise<UiaSuccess>;
  /** Forgets a completed session, so it cannot authorise a second operation. */
  finish(sessionId: string): Promise<void>;
}

export function createUia(ctx: HomeserverContext, stages: Readonly<Record<string, StageHandler>>): Uia {
  const { store, clock } = ctx;

  const stateOf = (request: UiaRequest, sessionId: string, completed: string[]): UiaState => ({
    flows: request.flows.map((f) => ({ stages: [...f] })),
    params: request.params ?? {},
    session: sessionId,
    ...(completed.length > 0 ? { completed } : {}),
  });

  const save = (sessionId: string, data: SessionData) =>
    store.accounts.putUiaSession(
      sessionId,
      {
        operation: data.operation,
        userId: data.userId,
        completed: data.completed,
        remembered: data.remembered,
      },
      clock.now() + UIA_SESSION_LIFETIME_MS,
    );

  async function newSession(request: UiaRequest): Promise<{ id: string; data: SessionData }> {
    const id = randomString(ctx.random, 24);
    const data: SessionData = {
      operation: request.operation,
      userId: request.userId,
      completed: [],
      remembered: {},
    };
    await save(id, data);
    return { id, data };
  }

  return {
    async authenticate(request) {
      const auth = request.auth;
      const givenSession = auth?.session;
      const type = auth?.type;
      if (givenSession !== undefined && typeof givenSession !== 'string') {
        throw badJson('auth.session must be a string');
      }
      if (type !== undefined && typeof type !== 'string') throw badJson('auth.type must be a string');

      // No auth at all (or neither a stage nor a session): the first request of the dance.
      if (auth === undefined || (givenSession === undefined && type === undefined)) {
        const { id } = await newSession(request);
        throw new UiaChallenge(stateOf(request, id, []));
      }

      let id: string;
      let data: SessionData;
      if (givenSession === undefined) {
        // The spec lets a client skip the first round trip when it already knows the flow.
        ({ id, data } = await newSession(request));
      } else {
        const raw = await store.accounts.getUiaSession(givenSession, clock.now());
        const parsed = raw ? toSessionData(raw) : null;
        if (!parsed) {
          throw new MatrixError(
            400,
            'M_UNKNOWN',
            'Unknown or expired user-interactive authentication session',
          );
        }
        if (parsed.operation !== request.operation) {
          throw forbidden('This authentication session was started for another request');
        }
        if (parsed.userId !== null && request.userId !== null && parsed.userId !== request.userId) {
          throw forbidden('This authentication session belongs to another user');
        }
        id = givenSession;
        data = parsed;
      }

      if (type !== undefined && !flowDone(request.flows, data.completed)) {
        if (!stageAllowed(request.flows, data.completed, type)) {
          throw new UiaChallenge(stateOf(request, id, data.completed), {
            errcode: 'M_FORBIDDEN',
            error: data.completed.includes(type)
              ? `Stage ${type} is already complete`
              : `Authentication type ${type} is not expected at this point of any flow`,
          });
        }
        const handler = stages[type];
        if (!handler) throw new Error(`UIA flow names stage ${type} that has no handler`);
        let result: StageResult;
        try {
          result = await handler(auth as JsonObject, { userId: data.userId ?? request.userId });
        } catch (err) {
          if (err instanceof MatrixError && (err.status === 401 || err.status === 403)) {
            throw new UiaChallenge(stateOf(request, id, data.completed), {
              errcode: err.errcode,
              error: err.message,
            });
          }
          throw err;
        }
        const boundUser = data.userId ?? request.userId;
        if (result.userId !== undefined && boundUser !== null && result.userId !== boundUser) {
          throw new UiaChallenge(stateOf(request, id, data.completed), {
            errcode: 'M_FORBIDDEN',
            error: 'The credentials given are for another user',
          });
        }
        data = {
          ...data,
          userId: boundUser ?? result.userId ?? null,
          completed: [...data.completed, type],
          remembered: { ...data.remembered, ...(result.remember as Record<string, JsonValue> | undefined) },
        };
        await save(id, data);
      }

      if (!flowDone(request.flows, data.completed)) {
        throw new UiaChallenge(stateOf(request, id, data.completed));
      }
      return { sessionId: id, userId: data.userId ?? request.userId, remembered: data.remembered };
    },

    async finish(sessionId) {
      await store.accounts.deleteUiaSession(sessionId);
    },
  };
}
