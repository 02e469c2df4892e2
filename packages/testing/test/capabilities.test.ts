import { OutflowError, type RecordResult } from '@outflow/core';
import { describe, expect, it } from 'vitest';
import { capabilityCheckList, capabilityChecks, destinationChecks, startDestination, type DestinationHarness } from '../src/index.js';
import { misdeclared, type Misdeclaration, type Write } from './broken.js';
import { memoryDestination } from './memory.js';
import { destinationDriverFor, failureOf, runCheck } from './run-check.js';

type CheckFn = (h: DestinationHarness) => Promise<void | string>;

/** The memory destination with `patch` applied, started for the checks. */
async function started(patch: Misdeclaration): Promise<DestinationHarness> {
  const memory = memoryDestination();
  return startDestination(destinationDriverFor(misdeclared(memory.connector, patch), memory));
}

/** Runs `check` as the suite does on the memory destination changed by `patch`, and returns what it resolved to. */
async function run(check: CheckFn, patch: Misdeclaration = {}): Promise<void | string> {
  return runCheck(await started(patch), check);
}

async function failure(check: CheckFn, patch: Misdeclaration): Promise<string> {
  return failureOf(await started(patch), check);
}

/** write() answering every operation of `kind` with `answer` and passing the rest on. */
const answering =
  (kind: string, answer: RecordResult) =>
  (write: Write): Write =>
  async (ctx, object, ops) => {
    const results = await write(ctx, object, ops.filter((op) => op.kind !== kind));
    let i = 0;
    return ops.map((op) => (op.kind === kind ? answer : results[i++]!));
  };

const refusing = (kind: string, retryable = false) => answering(kind, { ok: false, reason: `${kind} is not supported`, retryable });

describe('the capability checks pass on the reference destination', () => {
  it('passes every capability check that applies', async () => {
    for (const check of [capabilityChecks.coherent, capabilityChecks.operations, capabilityChecks.concurrency]) await expect(run(check)).resolves.toBeUndefined();
  });

  it('lists the undeclared check as not applicable when every operation is declared', async () => {
    const h = await started({});
    try {
      expect(capabilityCheckList<DestinationHarness>().find((c) => c.id === 'capabilities-undeclared')!.notApplicable?.(h)).toBe('every operation is declared');
    } finally {
      await h.close();
    }
  });
});

describe('the capability checks catch a destination whose capabilities lie', () => {
  it('capabilities-coherent fails when idempotency is not declared', async () => {
    const message = await failure(capabilityChecks.coherent, { capabilities: ({ idempotency: _, ...c }) => c as never });
    expect(message).toMatch(/idempotency must be declared as one of key, match, none; got undefined/);
  });

  it('capabilities-coherent fails on an unknown budget and an operation listed twice', async () => {
    const message = await failure(capabilityChecks.coherent, { capabilities: (c) => ({ ...c, budget: 'engine' as never, operations: [...c.operations, 'upsert'] }) });
    expect(message).toMatch(/budget must be "write" or "connector" when given; got "engine"/);
    expect(message).toMatch(/operations lists \["upsert"\] more than once/);
  });

  it('capabilities-coherent fails when a mode discover() offers needs an undeclared operation', async () => {
    const message = await failure(capabilityChecks.coherent, { capabilities: (c) => ({ ...c, operations: c.operations.filter((k) => k !== 'update') }) });
    expect(message).toMatch(/discover\(\) offers mode "update" for "contacts", which needs update/);
  });

  it('capabilities-coherent fails when the answer changes from call to call', async () => {
    let calls = 0;
    const message = await failure(capabilityChecks.coherent, { capabilities: (c) => ({ ...c, concurrency: ++calls }) });
    expect(message).toMatch(/answered differently for the same config: first .*"concurrency":1.*then .*"concurrency":2/);
  });

  it('capabilities (the destination suite) fails on a maxBatchSize or concurrency below 1', async () => {
    expect(await failure(destinationChecks.capabilities, { capabilities: (c) => ({ ...c, maxBatchSize: 0 }) })).toMatch(/maxBatchSize must be a positive integer, got 0/);
    expect(await failure(destinationChecks.capabilities, { capabilities: (c) => ({ ...c, concurrency: 0 }) })).toMatch(/concurrency must be a positive integer, got 0/);
  });

  it('capabilities-operations fails when write() refuses a declared insert', async () => {
    expect(await failure(capabilityChecks.operations, { write: refusing('insert') })).toMatch(
      /capabilities\(\) declares "insert", but write\(\) refused an insert of new record "k13000002": rejected: insert is not supported/,
    );
  });

  it('capabilities-operations fails when write() throws on a declared delete', async () => {
    const throwing =
      (write: Write): Write =>
      async (ctx, object, ops) => {
        if (ops.some((op) => op.kind === 'delete')) throw new OutflowError('OUTFLOW_MODE_UNSUPPORTED', 'deletes are not supported');
        return write(ctx, object, ops);
      };
    expect(await failure(capabilityChecks.operations, { write: throwing })).toMatch(
      /declares "delete", but write\(\) refused a delete of created record "k13000003": threw OUTFLOW_MODE_UNSUPPORTED: deletes are not supported/,
    );
  });

  it('capabilities-undeclared fails when write() performs an undeclared delete', async () => {
    const message = await failure(capabilityChecks.undeclared, { capabilities: (c) => ({ ...c, operations: c.operations.filter((k) => k !== 'delete') }) });
    expect(message).toMatch(/write\(\) answered ok to a delete of created record "k13100000", though capabilities\(\) declares only .*, and the record is gone/);
  });

  it('capabilities-undeclared fails when write() answers ok to an undeclared update without applying it', async () => {
    const message = await failure(capabilityChecks.undeclared, {
      capabilities: (c) => ({ ...c, operations: c.operations.filter((k) => k !== 'update') }),
      write: answering('update', { ok: true }),
    });
    expect(message).toMatch(/write\(\) answered ok to an update of created record "k13100000", though capabilities\(\) declares only \["upsert","insert","delete"\]; an undeclared operation must be refused/);
  });

  it('capabilities-undeclared fails when an undeclared operation is refused as retryable', async () => {
    const message = await failure(capabilityChecks.undeclared, {
      capabilities: (c) => ({ ...c, operations: c.operations.filter((k) => k !== 'insert') }),
      write: refusing('insert', true),
    });
    expect(message).toMatch(/write\(\) refused an insert of new record "k13100000" as retryable \(rejected: insert is not supported\)/);
  });

  it('passes capabilities-undeclared when undeclared operations are refused and not performed', async () => {
    await expect(
      run(capabilityChecks.undeclared, { capabilities: (c) => ({ ...c, operations: ['upsert', 'update'] }), write: (w) => refusing('delete')(refusing('insert')(w)) }),
    ).resolves.toBeUndefined();
  });

  it('capabilities-concurrency fails when concurrent write() calls are refused', async () => {
    const serial = (write: Write): Write => {
      let busy = false;
      return async (ctx, object, ops) => {
        if (busy) throw new OutflowError('OUTFLOW_DESTINATION', 'busy: one request at a time', { retryable: true });
        busy = true;
        try {
          await new Promise((r) => setTimeout(r, 5));
          return await write(ctx, object, ops);
        } finally {
          busy = false;
        }
      };
    };
    expect(await failure(capabilityChecks.concurrency, { write: serial })).toMatch(
      /of 2 write\(\) calls at once \(capabilities\(\)\.concurrency is 2\), the upsert of "k13200001" threw OUTFLOW_DESTINATION: busy: one request at a time/,
    );
  });
});
