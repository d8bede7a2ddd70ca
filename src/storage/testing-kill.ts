/**
 * For crash tests: runs a writer script in a child Node process, hands each line it prints
 * (one per acknowledged write) to `onLine`, and kills it with SIGKILL at a random moment
 * within `jitterMs` after the `atLeast`-th line — mid-write, as a crash would.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';

const node = join(import.meta.dirname, '../../node_modules/.bin/node');

export function runUntilKilled(
  script: string,
  args: readonly string[],
  onLine: (line: string) => void,
  atLeast: number,
  jitterMs = 20,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(node, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let buffered = '';
    let stderr = '';
    let lines = 0;
    let killing = false;
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    child.stdout.on('data', (chunk) => {
      buffered += chunk;
      const complete = buffered.split('\n');
      buffered = complete.pop() ?? '';
      for (const line of complete) {
        lines++;
        onLine(line);
      }
      if (!killing && lines >= atLeast) {
        killing = true;
        setTimeout(() => child.kill('SIGKILL'), Math.floor(Math.random() * jitterMs));
      }
    });
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve();
      else reject(new Error(`writer exited (${code}) before it was killed: ${stderr}`));
    });
  });
}
