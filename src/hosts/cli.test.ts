import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseServeArgs, parseSize } from './cli.ts';

const NODE = join(process.cwd(), 'node_modules', '.bin', 'node');

describe('hearth serve options', () => {
  it('defaults: HTTP, federation on, no extra CA, no delegation', () => {
    expect(parseServeArgs([])).toMatchObject({
      tlsCert: undefined,
      tlsKey: undefined,
      federationCa: [],
      delegateTo: undefined,
      federation: true,
      partialStateJoins: true,
    });
  });

  it('reads the federation flags, --federation-ca repeatable', () => {
    const options = parseServeArgs([
      '--tls-cert',
      'c.pem',
      '--tls-key',
      'k.pem',
      '--federation-ca',
      'one.pem',
      '--federation-ca',
      'two.pem',
      '--delegate-to',
      'matrix.example.org:443',
      '--federation',
      'off',
      '--partial-state-joins',
      'on',
    ]);
    expect(options).toMatchObject({
      tlsCert: 'c.pem',
      tlsKey: 'k.pem',
      federationCa: ['one.pem', 'two.pem'],
      delegateTo: 'matrix.example.org:443',
      federation: false,
      partialStateJoins: true,
    });
  });

  it.each([
    [['--tls-cert', 'c.pem'], /go together/],
    [['--tls-key', 'k.pem'], /go together/],
    [['--federation', 'maybe'], /on or off/],
    [['--partial-state-joins', 'yes'], /on or off/],
    [['--delegate-to', 'https://matrix.example.org'], /HOST or HOST:PORT/],
    [['--server-name', 'not a name'], /server name/],
  ])('refuses %j', (args, message) => {
    expect(() => parseServeArgs(args)).toThrow(message);
  });

  it('stops with one line when a certificate file is missing', () => {
    let failure: { status: number; stderr: string } | undefined;
    try {
      execFileSync(
        NODE,
        [
          'src/hosts/cli.ts',
          'serve',
          '--port',
          '0',
          '--tls-cert',
          '/nonexistent/c.pem',
          '--tls-key',
          '/nonexistent/k.pem',
        ],
        {
          encoding: 'utf8',
          stdio: 'pipe',
        },
      );
    } catch (err) {
      failure = err as { status: number; stderr: string };
    }
    expect(failure?.status).toBe(1);
    expect(failure?.stderr).toMatch(/^hearth serve could not start: .*\/nonexistent\/c\.pem/);
  }, 90_000);

  it('runs from bin/hearth.js as built JavaScript, built on demand when older than the sources', () => {
    // A copy of the launcher's own check: the build it runs is at least as new as every source.
    const run = () =>
      execFileSync(
        join(process.cwd(), 'node_modules', '.bin', 'node'),
        ['bin/hearth.js', 'serve', '--help'],
        {
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
    expect(run()).toMatch(/^Usage: hearth serve/);
    const built = statSync(join(process.cwd(), 'dist/cli/cli.cjs')).mtimeMs;
    expect(built).toBeGreaterThanOrEqual(statSync(join(process.cwd(), 'src/hosts/cli.ts')).mtimeMs);
    expect(run()).toMatch(/^Usage: hearth serve/);
  }, 120_000);

  it('refuses a Node older than 22.12 with what to run instead, before building anything', () => {
    // The same Node, told it is the system's Node 20 before the launcher reads its version.
    const older = 'data:text/javascript,Object.defineProperty(process.versions,"node",{value:"20.20.2"});';
    const result = spawnSync(NODE, ['--import', older, 'bin/hearth.js', 'serve', '--help'], {
      encoding: 'utf8',
    });
    expect(result.status).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/^hearth needs Node 22\.12 or later; this is Node 20\.20\.2\.\n/);
    expect(result.stderr).toContain('npm run hearth -- serve');
    expect(result.stderr).not.toContain('building');
  });

  it.skipIf(!existsSync('/proc/self/status'))(
    'builds a stale build in a process of its own: the server it then runs does not keep the bundler resident',
    async () => {
      // Older than every source: the next start rebuilds first.
      utimesSync(join(process.cwd(), 'dist/cli/cli.cjs'), new Date(0), new Date(0));
      const data = mkdtempSync(join(tmpdir(), 'hearth-cli-rebuild-'));
      const child = spawn(NODE, ['bin/hearth.js', 'serve', '--port', '0', '--data', data], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      try {
        let out = '';
        let err = '';
        child.stderr.on('data', (chunk: Buffer) => {
          err += chunk.toString();
        });
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`no start within 90 s: ${out}${err}`)), 90_000);
          child.stdout.on('data', (chunk: Buffer) => {
            out += chunk.toString();
            if (out.includes('Point a Matrix client at')) {
              clearTimeout(timer);
              resolve();
            }
          });
          child.once('exit', () => reject(new Error(`hearth serve exited: ${out}${err}`)));
        });
        expect(err).toContain('building dist/cli/cli.cjs');
        expect(out).not.toContain('Built dist/cli'); // the build's report goes to stderr
        const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
        const rssMb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]) / 1024;
        // ~75 MB serving; ~310 MB when the bundler had run in the same process.
        expect(rssMb).toBeLessThan(160);
      } finally {
        child.kill('SIGKILL');
        rmSync(data, { recursive: true, force: true });
      }
    },
    120_000,
  );

  it('runs the build from a code cache made after a start, and keeps a cache V8 takes', async () => {
    const dist = join(process.cwd(), 'dist/cli');
    const caches = () => readdirSync(dist).filter((name) => name.endsWith('.cache'));
    const data = mkdtempSync(join(tmpdir(), 'hearth-cli-cache-'));
    /** Starts `hearth serve` from bin/hearth.js; resolves once it has said where it listens, and `settle` ms more. */
    const startAndStop = (settle: number) =>
      new Promise<void>((resolve, reject) => {
        const child = spawn(NODE, ['bin/hearth.js', 'serve', '--port', '0', '--data', data], {
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
        child.stdout.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          if (out.includes('Point a Matrix client at')) setTimeout(() => child.kill('SIGTERM'), settle);
        });
        child.once('exit', () => {
          clearTimeout(timer);
          if (out.includes('Point a Matrix client at')) resolve();
          else reject(new Error(`hearth serve did not start: ${out}`));
        });
      });
    try {
      execFileSync(NODE, ['bin/hearth.js', 'serve', '--help']); // builds when stale
      for (const name of caches()) rmSync(join(dist, name));
      // Written half a second after the start, from what it compiled.
      await startAndStop(1500);
      const [cache, ...others] = caches();
      expect(cache).toMatch(
        new RegExp(
          `^cli\\.cjs\\.${process.version.replaceAll('.', '\\.')}-${process.arch}-\\d+-[\\d.]+\\.cache$`,
        ),
      );
      expect(others).toEqual([]);
      const written = statSync(join(dist, cache as string)).mtimeMs;
      // A start that V8 let use the cache leaves it as it was (a refused one is written again).
      await startAndStop(1500);
      expect(caches()).toEqual([cache]);
      expect(statSync(join(dist, cache as string)).mtimeMs).toBe(written);
    } finally {
      rmSync(data, { recursive: true, force: true });
    }
  }, 120_000);

  it('documents every option in --help', () => {
    const help = execFileSync(
      join(process.cwd(), 'node_modules', '.bin', 'node'),
      ['src/hosts/cli.ts', 'serve', '--help'],
      {
        encoding: 'utf8',
      },
    );
    for (const flag of [
      '--host',
      '--port',
      '--server-name',
      '--data',
      '--registration',
      '--log-level',
      '--tls-cert',
      '--tls-key',
      '--federation-ca',
      '--delegate-to',
      '--federation ',
    ]) {
      expect(help).toContain(flag);
    }
  }, 90_000);
});

describe('hearth serve --max-upload-size', () => {
  it('reads --max-upload-size as bytes or with a binary K, M or G', () => {
    expect(parseSize('1048576')).toBe(1024 * 1024);
    expect(parseSize('512K')).toBe(512 * 1024);
    expect(parseSize('50M')).toBe(50 * 1024 * 1024);
    expect(parseSize('50MiB')).toBe(50 * 1024 * 1024);
    expect(parseSize('1g')).toBe(1024 ** 3);
    for (const bad of ['', '0', '-1', '1.5M', '10T', 'lots'])
      expect(() => parseSize(bad)).toThrow(/max-upload-size/);
    expect(parseServeArgs(['--max-upload-size', '2M']).maxUploadBytes).toBe(2 * 1024 * 1024);
    expect(parseServeArgs([]).maxUploadBytes).toBeUndefined();
  });
});
