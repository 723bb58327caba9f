#!/usr/bin/env node
/**
 * @module cli/main
 * The package's `bin`: runs cli/run.ts with the real process and sets the exit code. Invoked through a
 * link named `sendmail` it behaves as `ferrymail sendmail`.
 */
import { processIo } from './io.js';
import { runCli } from './run.js';

const io = processIo();
runCli(process.argv.slice(2), io, process.argv[1] ?? 'ferrymail').then(
  (code) => {
    process.exitCode = code;
    // sendmail may have stopped reading stdin at a dot line; an open stdin must not keep us alive.
    process.stdin.destroy();
  },
  (err: unknown) => {
    process.stderr.write(
      `ferrymail: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exitCode = 70;
  },
);
