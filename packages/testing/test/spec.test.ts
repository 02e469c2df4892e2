import { defineConnector, OutflowError, Secret, Type, type Destination } from '@outflow/core';
import { describe, expect, it } from 'vitest';
import { specAcceptance, specCheckList, specChecks, type SpecHarness } from '../src/index.js';
import { openConnection } from '../src/harness.js';
import { memoryConfig, memoryDestination, TOKEN } from './memory.js';

specAcceptance(memoryDestination().connector, { validConfig: { token: TOKEN } });

const noop: Destination = {
  check: async () => {},
  discover: async () => ({ objects: [] }),
  capabilities: () => ({ operations: ['upsert'], maxBatchSize: 1, rateLimits: [], concurrency: 1, idempotency: 'match' }),
  write: async (_ctx, _object, ops) => ops.map(() => ({ ok: true as const })),
};

async function harness(connector: ReturnType<typeof defineConnector>, config: unknown): Promise<SpecHarness> {
  return { connector, ...(await openConnection(connector, { config })) };
}

describe('the spec checks catch a broken connector', () => {
  it('refuses a coreVersion range that excludes this core', async () => {
    const connector = defineConnector({ name: 'old', version: '1.0.0', coreVersion: '^2.0.0', config: memoryConfig, destination: noop });
    const h = await harness(connector, { token: TOKEN });
    await expect(specChecks.manifest(h)).rejects.toThrow(/coreVersion "\^2.0.0" of "old" does not include this core \(1.0.0\)/);
    await h.close();
  });

  it('refuses a version that is not semver', async () => {
    const connector = defineConnector({ name: 'loose', version: 'v1', coreVersion: '^1.0.0', config: memoryConfig, destination: noop });
    const h = await harness(connector, { token: TOKEN });
    await expect(specChecks.manifest(h)).rejects.toThrow(/version "v1" of "loose" is not a semver version/);
    await h.close();
  });

  it('refuses an open schema and an undescribed nested property', async () => {
    const config = Type.Object({
      token: Secret({ description: 'A token.' }),
      retry: Type.Optional(Type.Object({ times: Type.Integer() }, { additionalProperties: false, description: 'Retries.' })),
    });
    const connector = defineConnector({ name: 'vague', version: '1.0.0', coreVersion: '^1.0.0', config, destination: noop });
    const h = await harness(connector, { token: TOKEN });
    const failure = specChecks.schema(h);
    await expect(failure).rejects.toThrow(/the config must set additionalProperties: false/);
    await expect(failure).rejects.toThrow(/property "retry.times" has no description/);
    await h.close();
  });

  it('refuses a check() error that shows the secret', async () => {
    const leaky: Destination<{ token: string }> = {
      ...noop,
      check: async (ctx) => {
        if (ctx.config.token !== TOKEN) throw new OutflowError('OUTFLOW_CHECK_FAILED', `token ${ctx.config.token} was refused`);
      },
    };
    const connector = defineConnector({ name: 'leaky', version: '1.0.0', coreVersion: '^1.0.0', config: memoryConfig, destination: leaky });
    const h = await harness(connector, { token: TOKEN });
    const failure = await specChecks.secretsNotInErrors(h).catch((err: unknown) => err as Error);
    expect(failure).toBeInstanceOf(Error);
    expect(failure!.message).toMatch(/destination.check\(\) with a wrong "token" threw an error that shows a secret value: token \[REDACTED\] was refused/);
    await h.close();
  });

  it('refuses a schema that lets an unknown key through', async () => {
    const config = Type.Object({ token: Secret({ description: 'A token.' }) }, { description: 'Config.' });
    const connector = defineConnector({ name: 'open', version: '1.0.0', coreVersion: '^1.0.0', config, destination: noop });
    const h = await harness(connector, { token: TOKEN });
    await expect(specChecks.unknownKey(h)).rejects.toThrow(/a config with an unknown key still validates/);
    await h.close();
  });

  it('refuses a working config that holds none of the required keys, so none can be tried', async () => {
    const config = Type.Object(
      {
        token: Type.Optional(Secret({ description: 'A token.' })),
        auth: Type.Optional(Type.Object({ key: Secret({ description: 'A key.' }) }, { additionalProperties: false, description: 'Key auth.' })),
      },
      { additionalProperties: false, description: 'Config.' },
    );
    const connector = defineConnector({ name: 'untried', version: '1.0.0', coreVersion: '^1.0.0', config, destination: noop });
    const h = await harness(connector, { token: TOKEN });
    await expect(specChecks.requiredKeys(h)).rejects.toThrow(/holds none of the required keys/);
    await h.close();
  });

  it('refuses a working config missing a required key', async () => {
    const h = await harness(memoryDestination().connector, { batchSize: 5 });
    await expect(specChecks.validConfig(h)).rejects.toThrow(/must have required property 'token'/);
    await h.close();
  });
});

describe('specCheckList', () => {
  it('leaves out the required-keys check when every required key has a default', () => {
    const config = Type.Object(
      { readOnly: Type.Boolean({ default: true, description: 'Open read-only.' }) },
      { additionalProperties: false },
    );
    const connector = defineConnector({ name: 'defaults', version: '1.0.0', coreVersion: '^1.0.0', config, destination: noop });
    const ids = specCheckList(connector).map((c) => c.id);
    expect(ids).not.toContain('spec-required-keys');
    expect(specCheckList(memoryDestination().connector).map((c) => c.id)).toContain('spec-required-keys');
  });
});
