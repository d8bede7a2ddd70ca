import { afterEach, describe, expect, it, vi } from 'vitest';
import { type Command, runCommand } from './run-command.ts';

afterEach(() => vi.restoreAllMocks());

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    out.push(String(chunk));
    return true;
  });
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
    err.push(String(chunk));
    return true;
  });
  vi.spyOn(console, 'log').mockImplementation((...args) => {
    out.push(args.join(' '));
  });
  return { out, err };
}

const command = (overrides: Partial<Command<{ port: number }, { stop(): Promise<void> }>> = {}) => ({
  name: 'hearth test',
  usage: 'Usage: hearth test [--port N]\n',
  parse(argv: string[]) {
    if (argv[0] !== '--port') throw new Error(`Unknown option ${argv[0]}`);
    return { port: Number(argv[1]) };
  },
  async start({ port }: { port: number }) {
    return { stop: async () => undefined, port };
  },
  started: () => 'listening',
  ...overrides,
});

describe('runCommand', () => {
  it('prints the usage for --help, and the reason with the usage for arguments that do not parse', async () => {
    const { out, err } = capture();
    expect(await runCommand(['--help'], command())).toBe(0);
    expect(out.join('')).toBe('Usage: hearth test [--port N]\n');
    expect(await runCommand(['--bogus'], command())).toBe(2);
    expect(err.join('')).toBe('Unknown option --bogus\n\nUsage: hearth test [--port N]\n');
  });

  it('says in one line why it could not start', async () => {
    const { err } = capture();
    const failing = command({
      start: () => Promise.reject(new Error('EADDRINUSE: port 8008 is in use')),
    });
    expect(await runCommand(['--port', '8008'], failing)).toBe(1);
    expect(err.join('')).toBe('hearth test could not start: EADDRINUSE: port 8008 is in use\n');
  });

  it('says where it is once started, and stops cleanly on SIGTERM', async () => {
    const { out } = capture();
    const sigintBefore = process.listeners('SIGINT');
    const stop = vi.fn(async () => undefined);
    let started!: () => void;
    const ready = new Promise<void>((resolve) => {
      started = resolve;
    });
    const running = runCommand(
      ['--port', '1'],
      command({
        start: async () => ({ stop }),
        started: () => {
          started();
          return 'Point a client at http://127.0.0.1:1';
        },
      }),
    );
    await ready;
    process.emit('SIGTERM');
    expect(await running).toBe(0);
    expect(stop).toHaveBeenCalledTimes(1);
    expect(out).toContain('\nPoint a client at http://127.0.0.1:1');
    expect(out).toContain('\nSIGTERM: shutting down');
    // The run's SIGINT listener is left waiting: the test process is left as it was found.
    for (const listener of process.listeners('SIGINT'))
      if (!sigintBefore.includes(listener)) process.removeListener('SIGINT', listener);
  });
});
