/**
 * The shape every long-running `hearth` command shares (`hearth serve`, `hearth relay`):
 * `--help` prints the usage; arguments that do not parse print the reason and the usage
 * (exit 2); a start that fails — a missing certificate, a port in use — prints one line, not a
 * stack trace (exit 1); once started it says where it is, and SIGINT or SIGTERM stop it
 * cleanly (exit 0).
 */

export interface Command<Args, Running extends { stop(): Promise<void> }> {
  /** As the user typed it, for the error line: `hearth serve`. */
  name: string;
  usage: string;
  /** Throws an Error whose message says what is wrong with the arguments. */
  parse(argv: string[]): Args;
  start(args: Args): Promise<Running>;
  /** What to print once started (where to point a client, what to give peers). */
  started(running: Running): string;
}

/** What the program running a command (`bin/hearth.js`) hears of it. */
export interface CommandHooks {
  /** Called once the command has started and said where it is (not when it fails to start). */
  onStarted?(): void;
}

export async function runCommand<Args, Running extends { stop(): Promise<void> }>(
  argv: string[],
  command: Command<Args, Running>,
  hooks: CommandHooks = {},
): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(command.usage);
    return 0;
  }
  let args: Args;
  try {
    args = command.parse(argv);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${command.usage}`);
    return 2;
  }
  let running: Running;
  try {
    running = await command.start(args);
  } catch (err) {
    process.stderr.write(`${command.name} could not start: ${(err as Error).message}\n`);
    return 1;
  }
  console.log(`\n${command.started(running)}`);
  hooks.onStarted?.();
  await new Promise<void>((resolveStop) => {
    const stop = (signal: string) => {
      console.log(`\n${signal}: shutting down`);
      running.stop().then(resolveStop, (err) => {
        console.error(err);
        resolveStop();
      });
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  return 0;
}
