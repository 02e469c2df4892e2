/** The exit codes of the `outflow` CLI (documented in apps/runner/README.md). */
export const ExitCode = {
  /** Everything asked for was done (rows parked with errors do not count as failure). */
  Ok: 0,
  /** A sync or a connection check failed. */
  Failed: 1,
  /** The configuration or the command line is invalid; nothing was written. */
  Config: 2,
  /** Stopped by SIGINT/SIGTERM after a graceful drain. */
  Interrupted: 130,
} as const;
