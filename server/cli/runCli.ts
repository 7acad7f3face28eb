/**
 * One invocation of `switchboard`: dispatches argv to a command of commands.ts, prints results
 * on stdout and errors on stderr, and answers the documented exit code (CliError.ts).
 */
import { parseArgs } from 'node:util';
import { cliEnvironment } from '../../config/index.js';
import { CliError, ExitCode, ServerError, UsageError, type ExitCodeValue } from './CliError.js';
import { COMMANDS, helpOf, optionsOf, type CliIo, type Command } from './commands.js';

/** The top-level help, or a group's ("switchboard rooms --help"). */
function overview(group?: string): string {
  const commands = COMMANDS.filter((c) => group === undefined || c.path[0] === group);
  const width = Math.max(...commands.map((c) => c.path.join(' ').length + c.positionals.map((p) => ` <${p.name}>`).join('').length));
  const lines =
    group === undefined
      ? [
          'Usage: switchboard <command> [flags]',
          '',
          'Operates a Switchboard server: tokens, tenants, rooms, participants, MongoDB migrations.',
          '',
        ]
      : [`Usage: switchboard ${group} <command> [flags]`, ''];
  lines.push('Commands:');
  for (const c of commands) {
    const synopsis = `${c.path.join(' ')}${c.positionals.map((p) => ` <${p.name}>`).join('')}`;
    lines.push(`  ${synopsis.padEnd(width)}  ${c.brief}`);
  }
  lines.push(
    '',
    `Run "switchboard <command> --help" for a command's flags.`,
    'Environment: SWITCHBOARD_URL (default http://localhost:8080), SWITCHBOARD_API_SECRET (tenant calls),',
    '  SWITCHBOARD_ADMIN_KEY or ADMIN_API_KEY (tenant create), SWITCHBOARD_TENANT, SIGNING_KEYS (token create), MONGODB_URI (migrate).',
    'Exit codes: 0 ok, 1 the server answered an error (its code is printed), 2 bad usage, 3 server unreachable.',
  );
  return `${lines.join('\n')}\n`;
}

const isHelp = (arg: string | undefined): boolean => arg === '--help' || arg === '-h' || arg === 'help';

/** The command argv names (longest match) and the arguments after its name. */
function findCommand(argv: string[]): { command: Command; rest: string[] } | { group: string } | null {
  for (const command of COMMANDS) {
    if (command.path.every((word, i) => argv[i] === word)) return { command, rest: argv.slice(command.path.length) };
  }
  const group = argv[0];
  if (group !== undefined && COMMANDS.some((c) => c.path.length > 1 && c.path[0] === group)) return { group };
  return null;
}

/** Turns parseArgs' errors into one clear line. */
function parseError(name: string, error: unknown): UsageError {
  const { code, message: full } = error as { code?: string; message?: string };
  // node's messages run over several lines; the first says it.
  const message = full?.split('\n')[0];
  const help = `switchboard ${name} --help`;
  const flag = /'(-[^' ]+)/.exec(message ?? '')?.[1];
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return new UsageError(`${name}: unknown flag ${flag ?? ''}`.trimEnd(), help);
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') return new UsageError(`${name}: ${message ?? 'invalid flag value'}`, help);
  if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') return new UsageError(`${name}: ${message ?? 'unexpected argument'}`, help);
  return new UsageError(`${name}: ${message ?? String(error)}`, help);
}

/** Runs one invocation; resolves with the exit code (never throws for expected failures). */
export async function runCli(argv: string[], io: CliIo): Promise<ExitCodeValue> {
  try {
    if (argv.length === 0) {
      io.stderr(overview());
      return ExitCode.usage;
    }
    if (isHelp(argv[0])) {
      io.stdout(overview());
      return ExitCode.ok;
    }
    const found = findCommand(argv);
    if (found === null) throw new UsageError(`unknown command "${String(argv[0]).slice(0, 64)}"`);
    if ('group' in found) {
      if (argv.length === 1 || isHelp(argv[1])) {
        (argv.length === 1 ? io.stderr : io.stdout)(overview(found.group));
        return argv.length === 1 ? ExitCode.usage : ExitCode.ok;
      }
      throw new UsageError(`unknown command "${found.group} ${String(argv[1]).slice(0, 64)}"`, `switchboard ${found.group} --help`);
    }
    const { command, rest } = found;
    const name = command.path.join(' ');
    let parsed;
    try {
      parsed = parseArgs({ args: rest, options: optionsOf(command), strict: true, allowPositionals: true });
    } catch (error) {
      throw parseError(name, error);
    }
    if (parsed.values.help) {
      io.stdout(helpOf(command));
      return ExitCode.ok;
    }
    const expected = command.positionals.length;
    if (parsed.positionals.length !== expected) {
      const names = command.positionals.map((p) => `<${p.name}>`).join(' ');
      throw new UsageError(
        expected === 0
          ? `${name}: takes no arguments, got "${String(parsed.positionals[0]).slice(0, 64)}"`
          : `${name}: expects ${names}, got ${parsed.positionals.length} argument(s)`,
        `switchboard ${name} --help`,
      );
    }
    await command.run({ values: parsed.values, positionals: parsed.positionals, io, env: cliEnvironment(io.env), name });
    return ExitCode.ok;
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr(`switchboard: ${error.message}\n(see ${error.helpCommand})\n`);
      return error.exitCode;
    }
    if (error instanceof ServerError || error instanceof CliError) {
      io.stderr(`switchboard: ${error.message}\n`);
      return error.exitCode;
    }
    throw error;
  }
}
