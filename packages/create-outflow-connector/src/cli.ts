import { createInterface } from 'node:readline/promises';
import { relative } from 'node:path';
import { parseArgs } from 'node:util';
import { defaultDir, generate, type Generated } from './generate.js';
import { resolveNames, resolveRoles, resolveWrites, UsageError } from './names.js';

const HELP = `Usage: npm create outflow-connector <name> [-- options]
       create-outflow-connector <name> [options]

Writes a new Outflow connector package: its config schema, the skeleton of each role with
the contract in comments, an emulator of the vendor's API with fault knobs, the acceptance
test, a README and a changeset. \`npm install && npm test\` in it passes as written.

  <name>           the connector's name: acme-crm becomes the package outflow-connector-acme-crm
                   (@outflow/connector-acme-crm inside the Outflow repository); a full package
                   name (outflow-connector-acme, @acme/outflow-connector-crm) is kept as given

Options:
  --role <role>    destination, source or stream; repeat it (or use commas) for several.
                   destination by default. A stream comes with a source, which the engine
                   reads to reconcile a stream that went stale.
  --writes <how>   how the destination writes: batch (the default: many records in one
                   request) or each (one request per record, for an API with no batch
                   write; the records of a write are sent side by side).
  --dir <path>     where to write: it must be empty or not exist. By default ./<package name>,
                   or connectors/<name> inside the Outflow repository.
  -y, --yes        ask nothing: take the defaults for what is not given
  -h, --help       show this help

Exit codes: 0 written, 1 failed, 2 a name, role, flag or folder to change (nothing written).`;

/** Where the CLI reads and writes; the process's own by default. */
export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  cwd: string;
  /** Whether to ask for what the flags leave out (a terminal on both ends). */
  interactive: boolean;
}

const processIo = (): CliIo => ({
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  cwd: process.cwd(),
  interactive: process.stdin.isTTY === true && process.stdout.isTTY === true,
});

interface Answers {
  name?: string;
  roles: string[];
  writes?: string;
  dir?: string;
}

/** Asks, on a terminal, for what the flags left out; Enter takes the default shown. */
async function ask(given: Answers, cwd: string): Promise<Answers> {
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  try {
    const answers = { ...given };
    while (answers.name === undefined || answers.name.trim() === '') answers.name = await rl.question('Connector name (e.g. acme-crm): ');
    resolveNames(answers.name);
    if (answers.roles.length === 0) {
      const roles = await rl.question('Roles — destination, source, stream (comma-separated) [destination]: ');
      answers.roles = roles.trim() === '' ? [] : [roles];
      resolveRoles(answers.roles);
    }
    if (answers.writes === undefined && resolveRoles(answers.roles).includes('destination')) {
      const writes = await rl.question('Destination writes — batch (many records a request) or each (one request per record) [batch]: ');
      answers.writes = resolveWrites(writes);
    }
    if (answers.dir === undefined) {
      const suggested = relative(cwd, defaultDir(resolveNames(answers.name), cwd)) || '.';
      const dir = await rl.question(`Folder [${suggested}]: `);
      answers.dir = dir.trim() === '' ? suggested : dir.trim();
    }
    return answers;
  } finally {
    rl.close();
  }
}

function nextSteps(result: Generated, cwd: string): string {
  const { names, roles } = result;
  const shown = relative(cwd, result.dir) || '.';
  const what = roles.map((r) => (r === 'destination' && result.writes === 'each' ? 'destination, one request per record' : r)).join(', ');
  const lines = [`Wrote ${names.packageName} (${what}) in ${shown}:`, ...result.files.map((f) => `  ${f}`), ''];
  if (roles.includes('stream') && !roles.includes('destination')) lines.push('(A source came with the stream: a stale stream is reconciled by a diff, read through the source.)', '');
  if (result.monorepo !== undefined) {
    const root = relative(cwd, result.monorepo) || '.';
    lines.push(
      'Next, at the repository root' + (root === '.' ? '' : ` (${root})`) + ':',
      '  npm install                      # links the workspace package and updates package-lock.json',
      `  npx vitest run --project connector-${names.connector}`,
      '  npm run build                    # also lists it in tsconfig.json and tsconfig.test.json',
      'vitest.config.ts finds it from its package.json; nothing else to edit by hand.',
    );
  } else {
    lines.push('Next:', `  cd ${shown}`, '  npm install', '  npm test');
  }
  lines.push('', `Then make src/ and src/emulator/ speak ${names.pascal}'s API: README.md says where to start.`);
  return lines.join('\n');
}

/** Runs the CLI on `argv` (without node and the script); resolves with the exit code. */
export async function run(argv: string[], io: CliIo = processIo()): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        role: { type: 'string', multiple: true },
        writes: { type: 'string' },
        dir: { type: 'string' },
        yes: { type: 'boolean', short: 'y' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    io.stderr(`create-outflow-connector: ${(err as Error).message}\nRun create-outflow-connector --help for usage.\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.stdout(`${HELP}\n`);
    return 0;
  }
  try {
    if (positionals.length > 1) throw new UsageError(`one name at a time (got ${positionals.join(', ')})`);
    let answers: Answers = { name: positionals[0], roles: values.role ?? [], writes: values.writes, dir: values.dir };
    // Validate what was given before asking anything else.
    if (answers.name !== undefined) resolveNames(answers.name);
    resolveRoles(answers.roles);
    if (answers.writes !== undefined) resolveWrites(answers.writes);
    if (!values.yes && io.interactive) answers = await ask(answers, io.cwd);
    if (answers.name === undefined) throw new UsageError('a connector name is required, e.g. `npm create outflow-connector acme`');
    const { name, roles, writes, dir } = answers;
    const result = generate({ name, roles, cwd: io.cwd, ...(writes === undefined ? {} : { writes }), ...(dir === undefined ? {} : { dir }) });
    io.stdout(`${nextSteps(result, io.cwd)}\n`);
    return 0;
  } catch (err) {
    io.stderr(`create-outflow-connector: ${(err as Error).message}\n`);
    return err instanceof UsageError ? 2 : 1;
  }
}

