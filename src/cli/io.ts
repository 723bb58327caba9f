/**
 * @module cli/io
 * What a subcommand may touch of the outside world, passed in so tests can run subcommands in-process
 * with fake streams, environment, folder and clock; and the exit codes of sysexits.h.
 */
import type { Readable } from 'node:stream';

export interface OutStream {
  write(text: string): unknown;
  isTTY?: boolean;
}

export interface CliIo {
  stdin: Readable;
  stdout: OutStream;
  stderr: OutStream;
  env: Readonly<Record<string, string | undefined>>;
  cwd: string;
  /** ms since the epoch. */
  now(): number;
}

export function processIo(): CliIo {
  return {
    stdin: process.stdin,
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    cwd: process.cwd(),
    now: Date.now,
  };
}

/** sysexits.h, which sendmail's callers (cron, PHP, mutt) understand. */
export const EXIT = {
  OK: 0,
  /** Something asked for was not there (unknown queue id). */
  FAILURE: 1,
  USAGE: 64,
  DATAERR: 65,
  NOINPUT: 66,
  UNAVAILABLE: 69,
  SOFTWARE: 70,
  IOERR: 74,
  TEMPFAIL: 75,
  CONFIG: 78,
} as const;
