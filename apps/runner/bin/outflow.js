#!/usr/bin/env node
// The `outflow` command. It exists before the build, so that `npm ci` in the repository
// links it into node_modules/.bin; the CLI itself is dist/cli.js.
try {
  await import('../dist/cli.js');
} catch (err) {
  if (err?.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('/dist/cli.js')) {
    console.error('outflow: the runner is not built (no dist/cli.js). In the repository, run: npm run build');
    process.exit(1);
  }
  throw err;
}
