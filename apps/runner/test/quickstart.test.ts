import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
// @ts-expect-error plain ESM script without types
import { CUSTOMERS, INVALID_IDS, generate } from '../../../examples/quickstart/generate.mjs';
import { jsonLines, runCli, tempDir } from './helpers.js';

const example = join(import.meta.dirname, '..', '..', '..', 'examples', 'quickstart');

describe('the quickstart', () => {
  it('delivers the valid rows on the first run, parks the invalid ones with reasons, and sends 0 changes on the second', async () => {
    const dir = tempDir('outflow-quickstart-');
    copyFileSync(join(example, 'outflow.yaml'), join(dir, 'outflow.yaml'));
    generate(join(dir, 'data', 'customers.csv'));

    const first = await runCli(['run', '--json'], { cwd: dir });
    expect(first.code, first.stderr).toBe(0);
    expect(jsonLines(first.stdout)[0]).toMatchObject({
      inserted: CUSTOMERS - INVALID_IDS.length,
      rejected: INVALID_IDS.length,
      updated: 0,
      deleted: 0,
    });

    const second = await runCli(['run', '--json'], { cwd: dir });
    expect(jsonLines(second.stdout)[0]).toMatchObject({ inserted: 0, updated: 0, deleted: 0, rejected: 0, parked: INVALID_IDS.length });

    const errors = JSON.parse((await runCli(['errors', '--json'], { cwd: dir })).stdout) as { key: string; reason: string }[];
    expect(errors.map((e) => Number(e.key)).sort((a, b) => a - b)).toEqual(INVALID_IDS);
    for (const e of errors) expect(e.reason).toMatch(/email/i);
  });

  it('generates the same customers every time', () => {
    const a = tempDir();
    const b = tempDir();
    generate(join(a, 'c.csv'));
    generate(join(b, 'c.csv'));
    expect(readFileSync(join(a, 'c.csv'), 'utf8')).toBe(readFileSync(join(b, 'c.csv'), 'utf8'));
  });
});
