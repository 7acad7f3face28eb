/** Why the CLI stopped, each with its documented exit code. */

/** The exit codes of `switchboard` (README, "Operator's CLI"). */
export const ExitCode = {
  ok: 0,
  /** The server answered with an error (its code is printed). */
  serverError: 1,
  /** Bad usage: unknown command or flag, invalid argument, missing setting or credential; nothing was sent. */
  usage: 2,
  /** The server (or MongoDB, for migrate) could not be reached, or answered something that is not the API. */
  unreachable: 3,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

export class CliError extends Error {
  constructor(
    readonly exitCode: ExitCodeValue,
    message: string,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** Bad usage, with the help command that explains it. */
export class UsageError extends CliError {
  constructor(
    message: string,
    readonly helpCommand = 'switchboard --help',
  ) {
    super(ExitCode.usage, message);
    this.name = 'UsageError';
  }
}

/** An error answer of the API: {"error":{"code","message"}}. */
export class ServerError extends CliError {
  constructor(
    readonly code: string,
    readonly serverMessage: string,
    readonly status: number,
  ) {
    super(ExitCode.serverError, `${code}: ${serverMessage} (HTTP ${status})`);
    this.name = 'ServerError';
  }
}
