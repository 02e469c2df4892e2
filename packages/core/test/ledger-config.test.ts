import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/index.js';
import { clearSecrets, OutflowError, redact } from '../src/index.js';

const root = mkdtempSync(join(tmpdir(), 'outflow-ledger-config-'));
let counter = 0;
afterAll(() => rmSync(root, { recursive: true, force: true }));
afterEach(() => clearSecrets());

const URL_WITH_PASSWORD = 'postgres://outflow:pw-7c3e9a1d@db.internal:5432/ops';

function load(ledger: string, env: NodeJS.ProcessEnv = {}) {
  const file = join(root, `outflow-${++counter}.yaml`);
  writeFileSync(file, `version: 1\n${ledger}connections: {}\nsyncs: []\n`);
  return loadConfig(file, { env });
}

describe('the ledger block of outflow.yaml', () => {
  it('selects a PostgreSQL ledger, with the schema defaulting to outflow, and treats its URL as a secret', async () => {
    const loaded = await load('ledger:\n  postgres: { url: "${env:OUTFLOW_LEDGER_URL}" }\n', { OUTFLOW_LEDGER_URL: URL_WITH_PASSWORD });
    expect(loaded.config.ledger).toEqual({ postgres: { url: URL_WITH_PASSWORD, schema: 'outflow' } });
    expect(redact(`could not reach ${URL_WITH_PASSWORD}`)).toBe('could not reach [REDACTED]');
  });

  it('is optional: without it the runner keeps the SQLite ledger', async () => {
    expect((await load('')).config.ledger).toBeUndefined();
  });

  it('refuses a schema that is not a plain name and an unknown key, never showing the URL', async () => {
    const err = await load(`ledger:\n  postgres: { url: "${URL_WITH_PASSWORD}", schema: "Bad-Name", pool: 9 }\n`).then(
      () => expect.unreachable('the config loaded'),
      (e: unknown) => e as OutflowError,
    );
    expect(err.code).toBe('OUTFLOW_CONFIG_INVALID');
    expect(err.message).toMatch(/\/ledger\/postgres\/schema/);
    expect(err.message).toMatch(/pool/);
    expect(err.message).not.toContain('pw-7c3e9a1d');
  });

  it('refuses a missing URL', async () => {
    const err = await load('ledger:\n  postgres: { schema: ops }\n').then(
      () => expect.unreachable('the config loaded'),
      (e: unknown) => e as OutflowError,
    );
    expect(err.message).toMatch(/\/ledger\/postgres.*url/);
  });
});
