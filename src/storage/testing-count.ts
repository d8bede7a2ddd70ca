/**
 * An `Engine` that counts what goes through it, for tests that assert how much store work an
 * operation costs (transactions, and which tables each reads), not how long it takes.
 */
import type { Engine, ReadOptions, Tx, WriteOptions } from './engine.ts';

export interface EngineCall {
  kind: 'read' | 'write';
  tables: readonly string[];
  /** `table.operation` for each request made in the transaction, in order. */
  requests: string[];
  /**
   * When the call began and when its answer came, as steps of one counter shared by every
   * call of the engine: calls that all began before any of them ended waited on no other.
   */
  began: number;
  ended?: number;
  /** A write: when the engine asked to commit it (`WriteOptions.committing`), if it said. */
  committing?: number;
}

export interface CountingEngine {
  engine: Engine;
  /** Every transaction since the last `reset`. */
  readonly calls: EngineCall[];
  reset(): void;
}

const TX_OPERATIONS = [
  'get',
  'getMany',
  'query',
  'count',
  'put',
  'putMany',
  'insert',
  'delete',
  'deleteRange',
] as const;

function countingTx(tx: Tx, call: EngineCall): Tx {
  const counted = {} as Record<string, unknown>;
  for (const op of TX_OPERATIONS) {
    const inner = tx[op] as (table: string, ...rest: unknown[]) => unknown;
    counted[op] = (table: string, ...rest: unknown[]) => {
      call.requests.push(`${table}.${op}`);
      return inner.call(tx, table, ...rest);
    };
  }
  return counted as unknown as Tx;
}

export function countingEngine(engine: Engine): CountingEngine {
  const calls: EngineCall[] = [];
  let step = 0;
  const run =
    (kind: 'read' | 'write') =>
    async <T>(
      tables: readonly string[],
      fn: (tx: Tx) => Promise<T>,
      options?: ReadOptions & WriteOptions,
    ): Promise<T> => {
      const call: EngineCall = { kind, tables: [...tables], requests: [], began: step++ };
      calls.push(call);
      try {
        return kind === 'read'
          ? await engine.read(tables, (tx) => fn(countingTx(tx, call)), options)
          : await engine.write(tables, (tx) => fn(countingTx(tx, call)), {
              ...options,
              ...(options?.committing
                ? {
                    committing: () => {
                      call.committing = step++;
                      options.committing?.();
                    },
                  }
                : {}),
            });
      } finally {
        call.ended = step++;
      }
    };
  return {
    engine: {
      kind: engine.kind,
      bytes: engine.bytes,
      read: run('read'),
      write: run('write'),
      close: () => engine.close(),
    },
    calls,
    reset() {
      calls.length = 0;
    },
  };
}
