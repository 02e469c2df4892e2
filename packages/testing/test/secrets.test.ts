import { defineConnector, Secret, Type, type AnyConnector, type Destination } from '@outflow/core';
import { describe, expect, it } from 'vitest';
import {
  destinationChecks,
  sourceChecks,
  specChecks,
  startDestination,
  startSource,
  startStream,
  streamChecks,
  type DestinationDriver,
  type SpecHarness,
  type StreamDriver,
} from '../src/index.js';
import { openConnection } from '../src/harness.js';
import { instrument, withoutLeaks } from '../src/secrets.js';
import { namedLikeSecret } from '../src/spec.js';
import { leaky, type Leak } from './broken.js';
import { memoryConfig, memoryDestination, memorySource, memoryStream, TOKEN, type MemoryConfig } from './memory.js';
import { destinationDriverFor, failureOf, sourceDriverFor as sourceDriver } from './run-check.js';

function streamDriver(spec: Leak): StreamDriver<MemoryConfig> {
  const memory = memoryStream();
  return {
    connector: leaky(memory.connector, spec),
    config: { token: TOKEN },
    model: { table: 'items', primaryKey: ['id'] },
    row: memory.row,
    mutate: memory.mutate,
    makeStale: memory.makeStale,
    timeoutMs: 2_000,
  };
}

function destinationDriver(spec: Leak, memory = memoryDestination()): DestinationDriver<MemoryConfig> {
  return destinationDriverFor(leaky(memory.connector, spec), memory);
}

async function specHarness(connector: AnyConnector, config: unknown = { token: TOKEN }, badConfigs: { name: string; config: unknown }[] = []): Promise<SpecHarness> {
  return { connector, ...(await openConnection(connector, { config, badConfigs })) };
}

describe('every call the suite makes is watched for secrets', () => {
  it('catches a source whose check() logs its token, at debug level', async () => {
    const message = await failureOf(await startSource(sourceDriver(leaky(memorySource(), { method: 'source.check', how: 'log' }))), sourceChecks.check);
    expect(message).toMatch(/source\.check\(\) logged a debug line that shows a secret value: .*"auth":"\[REDACTED\]".*\(the value of "token"\)/);
    expect(message).not.toContain(TOKEN);
  });

  it('catches a source whose discover() puts its token in a metric label', async () => {
    const message = await failureOf(await startSource(sourceDriver(leaky(memorySource(), { method: 'source.discover', how: 'metric' }))), sourceChecks.discover);
    expect(message).toMatch(/source\.discover\(\) reported the counter "memory_calls" that shows a secret value: .*\(the value of "token", in its name or labels\)/);
  });

  it('catches a source whose read() stores its token in ctx.kv', async () => {
    const message = await failureOf(await startSource(sourceDriver(leaky(memorySource(), { method: 'source.read', how: 'kv' }))), sourceChecks.read);
    expect(message).toMatch(/source\.read\(\) stored the ctx\.kv entry "memory-session" that shows a secret value: .*session of \[REDACTED\]/);
  });

  it('catches a stream whose open() logs its token', async () => {
    const message = await failureOf(await startStream(streamDriver({ method: 'stream.open', how: 'log' })), streamChecks.follow);
    expect(message).toMatch(/stream\.open\(\) logged a debug line that shows a secret value/);
  });

  it('catches a stream whose next() puts its token in a metric label', async () => {
    const message = await failureOf(await startStream(streamDriver({ method: 'stream.next', how: 'metric' })), streamChecks.follow);
    expect(message).toMatch(/stream next\(\) reported the counter "memory_calls" that shows a secret value/);
  });

  it('catches a stream whose commit() logs its token', async () => {
    const message = await failureOf(await startStream(streamDriver({ method: 'stream.commit', how: 'log' })), streamChecks.resume);
    expect(message).toMatch(/stream\.commit\(\) logged a debug line that shows a secret value/);
  });

  it('catches a stream whose health() stores its token in ctx.kv', async () => {
    const message = await failureOf(await startStream(streamDriver({ method: 'stream.health', how: 'kv' })), streamChecks.health);
    expect(message).toMatch(/stream\.health\(\) stored the ctx\.kv entry "memory-session" that shows a secret value/);
  });

  it('catches a stream whose close() logs its token, though the check ignores close() failing', async () => {
    const message = await failureOf(await startStream(streamDriver({ method: 'stream.close', how: 'log' })), streamChecks.follow);
    expect(message).toMatch(/stream\.close\(\) logged a debug line that shows a secret value/);
  });

  it('catches a destination whose check() logs its token', async () => {
    const message = await failureOf(await startDestination(destinationDriver({ method: 'destination.check', how: 'log' })), destinationChecks.check);
    expect(message).toMatch(/destination\.check\(\) logged a debug line that shows a secret value/);
  });

  it('catches a destination whose discover() puts its token in a metric label', async () => {
    const message = await failureOf(await startDestination(destinationDriver({ method: 'destination.discover', how: 'metric' })), destinationChecks.discover);
    expect(message).toMatch(/destination\.discover\(\) reported the counter "memory_calls" that shows a secret value/);
  });

  it('catches a destination whose capabilities() logs its token while the harness starts', async () => {
    const message = await failureOf(await startDestination(destinationDriver({ method: 'destination.capabilities', how: 'log' })), destinationChecks.check);
    expect(message).toMatch(/outside any call the suite watched \(while the harness started, or in a timer or event handler\) logged a debug line that shows a secret value/);
  });

  it('catches a destination whose write() logs its token', async () => {
    const message = await failureOf(await startDestination(destinationDriver({ method: 'destination.write', how: 'log' })), destinationChecks.create);
    expect(message).toMatch(/destination\.write\(\) logged a debug line that shows a secret value/);
  });

  it("catches a destination whose write() puts its token in a rejection's reason", async () => {
    const message = await failureOf(await startDestination(destinationDriver({ method: 'destination.write', how: 'reason' })), destinationChecks.badRecord);
    expect(message).toMatch(/destination\.write\(\) returned a rejection reason that shows a secret value: .*\(sent with token \[REDACTED\]\)/);
  });

  it('catches a destination whose lookup() puts its token in a metric label', async () => {
    const memory = memoryDestination({ idempotency: 'none', lookup: 'honest' });
    const message = await failureOf(await startDestination(destinationDriver({ method: 'destination.lookup', how: 'metric' }, memory)), destinationChecks.idempotency);
    expect(message).toMatch(/destination\.lookup\(\) reported the counter "memory_calls" that shows a secret value/);
  });
});

describe('spec-secrets-redacted runs the connector with the working config', () => {
  it('catches a source whose discover() logs its token', async () => {
    const h = await specHarness(leaky(memorySource(), { method: 'source.discover', how: 'log' }));
    expect(await failureOf(h, specChecks.secretsRedacted)).toMatch(/source\.discover\(\) with the working config logged a debug line that shows a secret value/);
  });

  it('catches a destination whose capabilities() logs its token', async () => {
    const h = await specHarness(leaky(memoryDestination().connector, { method: 'destination.capabilities', how: 'log' }));
    expect(await failureOf(h, specChecks.secretsRedacted)).toMatch(/destination\.capabilities\(\) with the working config logged a debug line that shows a secret value/);
  });

  it("catches a stream whose health() stores its token, in the stream suite's open → health → close", async () => {
    const h = await startStream(streamDriver({ method: 'stream.health', how: 'kv' }));
    expect(await failureOf(h, specChecks.secretsRedacted)).toMatch(/stream\.health\(\) with the working config stored the ctx\.kv entry "memory-session"/);
  });

  it('passes the reference connectors', async () => {
    for (const connector of [memorySource(), memoryStream().connector, memoryDestination().connector]) {
      const h = instrument(await specHarness(connector));
      try {
        await expect(withoutLeaks(h, () => specChecks.secretsRedacted(h))).resolves.toBeUndefined();
      } finally {
        await h.close();
      }
    }
  });

  it('refuses a working secret too short to tell apart', async () => {
    expect(await failureOf(await specHarness(memorySource(), { token: 'abc1234' }), specChecks.secretsRedacted)).toMatch(
      /secret "token" in the working config has 7 characters; give one of 8 or more/,
    );
  });

  it('refuses a working secret that another config value holds', async () => {
    const config = Type.Object(
      { user: Type.String({ description: 'The user.' }), password: Secret({ description: 'The password.' }) },
      { additionalProperties: false },
    );
    const connector = defineConnector({ name: 'users', version: '1.0.0', coreVersion: '^1.0.0', config, source: memorySource().source! as never });
    expect(await failureOf(await specHarness(connector, { user: 'outflow-admin-1', password: 'outflow-admin' }), specChecks.secretsRedacted)).toMatch(
      /secret "password" in the working config also appears in "user"/,
    );
  });
});

describe('spec-secrets-not-in-errors runs every method with wrong secrets and bad configs', () => {
  it("catches a source whose read() puts the wrong token in its error's cause", async () => {
    const h = await specHarness(leaky(memorySource(), { method: 'source.read', how: 'cause', when: 'refused' }));
    const h2 = Object.assign(h, { driver: { model: { table: 'people', primaryKey: ['id'] } } });
    expect(await failureOf(h2, specChecks.secretsNotInErrors)).toMatch(
      /source\.read\(\) with a wrong "token" threw an error that shows a secret value: 401 for \[REDACTED\] \(the value of "token", in its cause's message\)/,
    );
  });

  it("catches a stream whose open() puts the wrong token in its error's details", async () => {
    const h = await startStream({ ...streamDriver({ method: 'stream.open', how: 'details', when: 'refused' }), badConfigs: [] });
    expect(await failureOf(h, specChecks.secretsNotInErrors)).toMatch(/stream\.open\(\) with a wrong "token" threw an error that shows a secret value: .*"details":\{"token":"\[REDACTED\]"\}.*in the error's JSON form/);
  });

  it('catches a destination whose capabilities() puts the wrong token in its message', async () => {
    const h = await specHarness(leaky(memoryDestination().connector, { method: 'destination.capabilities', how: 'message', when: 'refused' }));
    expect(await failureOf(h, specChecks.secretsNotInErrors)).toMatch(/destination\.capabilities\(\) with a wrong "token" threw an error that shows a secret value: token \[REDACTED\] was refused/);
  });

  it('catches a destination whose write() throws an HTTP error carrying the request headers', async () => {
    const h = await startDestination(destinationDriver({ method: 'destination.write', how: 'error-property', when: 'refused' }));
    expect(await failureOf(h, specChecks.secretsNotInErrors)).toMatch(
      /destination\.write\(\) with a wrong "token" threw an error that shows a secret value: .*"authorization":"Bearer \[REDACTED\]".*in the error's JSON form/,
    );
  });

  it('catches a destination whose lookup() puts the wrong token in its message', async () => {
    const h = await startDestination(destinationDriver({ method: 'destination.lookup', how: 'message', when: 'refused' }, memoryDestination({ idempotency: 'none', lookup: 'honest' })));
    expect(await failureOf(h, specChecks.secretsNotInErrors)).toMatch(/destination\.lookup\(\) with a wrong "token" threw an error that shows a secret value: token \[REDACTED\] was refused/);
  });

  it('catches a destination whose discover() logs a wrong token', async () => {
    const h = await specHarness(leaky(memoryDestination().connector, { method: 'destination.discover', how: 'log', when: 'refused' }));
    expect(await failureOf(h, specChecks.secretsNotInErrors)).toMatch(/destination\.discover\(\) with a wrong "token" logged a debug line that shows a secret value/);
  });

  it("catches a source whose check() shows a bad config's token", async () => {
    const expired = 'expired-token-4567';
    const h = await specHarness(leaky(memorySource(), { method: 'source.check', how: 'message', when: { token: expired } }), { token: TOKEN }, [
      { name: 'an expired token', config: { token: expired } },
    ]);
    expect(await failureOf(h, specChecks.secretsNotInErrors)).toMatch(/source\.check\(\) with bad config "an expired token" threw an error that shows a secret value: token \[REDACTED\] was refused/);
  });
});

describe('spec-secrets-declared', () => {
  const noop: Destination = memoryDestination().connector.destination!;

  it('catches properties named like secrets and URLs with passwords that are not marked secret', async () => {
    const config = Type.Object(
      {
        apiToken: Type.String({ description: 'The API token.' }),
        auth: Type.Object({ password: Type.String({ description: 'The password.' }) }, { additionalProperties: false, description: 'Login.' }),
        dsn: Type.String({ description: 'Where the database is.' }),
      },
      { additionalProperties: false },
    );
    const connector = defineConnector({ name: 'careless', version: '1.0.0', coreVersion: '^1.0.0', config, destination: noop as never });
    const message = await failureOf(
      await specHarness(connector, { apiToken: 'tok-123456789', auth: { password: 'pw-123456789' }, dsn: 'postgres://app:hunter2secret@localhost/app' }),
      specChecks.secretsDeclared,
    );
    expect(message).toMatch(/property "apiToken" is named like a secret but is not marked secret: true/);
    expect(message).toMatch(/property "auth\.password" is named like a secret but is not marked secret: true/);
    expect(message).toMatch(/property "dsn" holds a URL with a password but is not marked secret: true/);
    expect(message).not.toContain('hunter2secret');
  });

  it('passes the reference config, whose token is marked secret', async () => {
    const h = await specHarness(defineConnector({ name: 'careful', version: '1.0.0', coreVersion: '^1.0.0', config: memoryConfig, destination: noop as never }));
    try {
      await expect(specChecks.secretsDeclared(h)).resolves.toBeUndefined();
    } finally {
      await h.close();
    }
  });

  it('tells secret-like names from others by their last word', () => {
    for (const name of ['password', 'accessToken', 'client_secret', 'apiKey', 'privateKey', 'privateKeyPassphrase', 'signingKey', 'credentials']) expect(namedLikeSecret(name), name).toBe(true);
    for (const name of ['primaryKey', 'keyColumns', 'tokenUrl', 'secretName', 'passwordFile', 'idempotencyKey', 'account']) expect(namedLikeSecret(name), name).toBe(false);
  });
});
