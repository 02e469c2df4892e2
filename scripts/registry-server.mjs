#!/usr/bin/env node
// The Verdaccio process behind scripts/registry.mjs: `node scripts/registry-server.mjs <dir>`
// serves the registry configured by <dir>/config.yaml on 127.0.0.1, on a free port, and
// reports `{ url }` to its parent over IPC (or prints it when started by hand).
import { runServer } from 'verdaccio';

const dir = process.argv[2];
if (dir === undefined) {
  console.error('usage: node scripts/registry-server.mjs <registry folder>');
  process.exit(2);
}

const server = await runServer(`${dir}/config.yaml`);
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const url = `http://127.0.0.1:${port}`;
  if (process.send) process.send({ url });
  else console.log(url);
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => server.close(() => process.exit(0)));
process.on('disconnect', () => process.exit(0));
