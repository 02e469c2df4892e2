#!/usr/bin/env node
// Some vendor SDKs probe cloud metadata addresses when imported; this must be set first.
process.env['SNOWFLAKE_DISABLE_PLATFORM_DETECTION'] ??= 'true';

// `outflow errors | head`: a reader that went away is not an error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}

// Everything the CLI creates (the state folder, the ledger, delivered state, sandbox logs
// holding row data) is readable by its owner only.
process.umask(0o077);

const controller = new AbortController();
let signals = 0;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    signals++;
    if (signals > 1) process.exit(130);
    // The verb: the first word that is neither an option nor the value of -c/--config.
    const verb = process.argv.slice(2).find((a, i, all) => !a.startsWith('-') && !['-c', '--config'].includes(all[i - 1] ?? ''));
    const what = verb === 'sandbox' ? 'stopping the emulators' : 'finishing the batches in flight';
    process.stderr.write(`\n${sig}: ${what} (again to stop at once)\n`);
    controller.abort();
  });
}

const { main } = await import('./main.js');
process.exitCode = await main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, signal: controller.signal, chdir: true });
