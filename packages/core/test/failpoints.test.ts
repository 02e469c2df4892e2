import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';

const BUILT = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'index.js');

/** Runs a script that passes `diff.after-snapshot` three times, with OUTFLOW_FAILPOINTS set to `spec`. */
function passThreeTimes(spec: string | undefined) {
  if (!existsSync(BUILT)) throw new Error(`${BUILT} is missing: build first (npm test does)`);
  const script = `import { failpoint } from ${JSON.stringify(pathToFileURL(BUILT).href)};
    for (let i = 1; i <= 3; i++) { failpoint('diff.after-snapshot'); console.log('passed ' + i); }`;
  const env = { ...process.env };
  delete env['OUTFLOW_FAILPOINTS'];
  if (spec !== undefined) env['OUTFLOW_FAILPOINTS'] = spec;
  return spawnSync(process.execPath, ['--input-type=module', '-e', script], { env, encoding: 'utf8' });
}

describe('failpoints', () => {
  it('do nothing unless OUTFLOW_FAILPOINTS arms them', () => {
    const r = passThreeTimes(undefined);
    expect([r.status, r.stdout.trim().split('\n')]).toEqual([0, ['passed 1', 'passed 2', 'passed 3']]);
  });

  it('kill the process with SIGKILL on the armed pass, saying which point', () => {
    const r = passThreeTimes('stream.checkpoint-saved, diff.after-snapshot:2');
    expect(r.signal).toBe('SIGKILL');
    expect(r.stdout.trim().split('\n')).toEqual(['passed 1']);
    expect(r.stderr).toContain('failpoint diff.after-snapshot reached (hit 2)');
  });

  it('warn about a name that is not a failpoint, and ignore it', () => {
    const r = passThreeTimes('diff.after-snapshots:1');
    expect(r.status).toBe(0);
    expect(r.stderr).toContain('"diff.after-snapshots:1", which is not a failpoint');
  });
});
