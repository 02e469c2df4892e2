import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { OutflowError, leaseLostError, redact, type LeaseGrant, type Ledger } from '@outflow/core';
import { AcceptanceFailure, ledgerAcceptance, ledgerChecks, startLedger, type LedgerDriver } from '../src/index.js';
import { MemoryLedgers, type MemoryLedger, type MemoryStore } from './memory-ledger.js';

const reference = new MemoryLedgers();
ledgerAcceptance({ name: 'memory (reference)', open: (store) => reference.open(store) });

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const lost = (sync: string) => leaseLostError(sync, 1);

/** A driver over the reference ledger with some methods replaced: a deliberately broken ledger. */
function broken(patch: (inner: MemoryLedger, store: MemoryStore) => Partial<Ledger>, open?: (ledgers: MemoryLedgers, store: string) => MemoryLedger): LedgerDriver {
  const ledgers = new MemoryLedgers();
  return {
    name: 'broken',
    open: (name) => {
      const inner = open ? open(ledgers, name) : ledgers.open(name);
      const replaced = patch(inner, inner.store) as Record<PropertyKey, unknown>;
      return new Proxy(inner, {
        get: (target, key) => {
          if (key in replaced) return replaced[key];
          const value = (target as unknown as Record<PropertyKey, unknown>)[key];
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
    },
  };
}

/** A lease grant for `owner` written straight into the store, whatever was there. */
function grantRaw(store: MemoryStore, sync: string, owner: string, ttlMs: number, token: number): LeaseGrant {
  const expiresAt = Date.now() + ttlMs;
  store.leases.set(sync, { owner, expiresAt, token });
  return { sync, owner, token, expiresAt: new Date(expiresAt).toISOString() };
}

type CheckName = keyof typeof ledgerChecks;

interface Variant {
  check: CheckName;
  what: string;
  driver: () => LedgerDriver;
  message: RegExp;
}

const variants: Variant[] = [
  {
    check: 'runs',
    what: 'ignores a finish of a run that does not exist',
    driver: () => broken((inner) => ({ finishRun: (...args) => inner.finishRun(...args).catch(() => undefined) })),
    message: /finishRun\(\d+\) of a run that does not exist went through; it must be refused with OUTFLOW_LEDGER/,
  },
  {
    check: 'runs',
    what: 'drops the counts given to finishRun',
    driver: () => broken((inner) => ({ finishRun: (id, status, _counts, error, fence) => inner.finishRun(id, status, { inserted: 0, updated: 0, deleted: 0, rejected: 0, skipped: 0 }, error, fence) })),
    message: /a finished run: expected \{"status":"partial","inserted":5/,
  },
  {
    check: 'listRuns',
    what: 'lists the oldest run first',
    driver: () => broken((inner) => ({ listRuns: async (o) => (await inner.listRuns({ ...o, limit: undefined })).reverse().slice(0, o?.limit) })),
    message: /listRuns\(\) of runs a1, b1, a2 started in that order: expected \[(\d+),\d+,\d+\], got \[(?!\1)/,
  },
  {
    check: 'listRuns',
    what: 'ignores the limit',
    driver: () => broken((inner) => ({ listRuns: (o) => inner.listRuns({ ...(o?.sync ? { sync: o.sync } : {}) }) })),
    message: /listRuns\(\{ limit: 2 \}\): expected \[\d+,\d+\], got \[\d+,\d+,\d+\]/,
  },
  {
    check: 'abandon',
    what: 'abandons the running runs of every sync',
    driver: () =>
      broken((inner, store) => ({
        abandonRunningRuns: async (sync) => {
          const n = await inner.abandonRunningRuns(sync);
          for (const r of store.runs) if (r.status === 'running') r.status = 'aborted';
          return n;
        },
      })),
    message: /a finished run of s and a running run of t after abandonRunningRuns\("s"\): expected \["succeeded","running"\], got \["succeeded","aborted"\]/,
  },
  {
    check: 'registerSync',
    what: 'never reports the previous hash',
    driver: () => broken((inner) => ({ registerSync: async (s, h) => (await inner.registerSync(s, h), {}) })),
    message: /registerSync\("contacts", "h2"\) \(step 3 .*: expected \{"previousHash":"h1"\}, got \{\}/,
  },
  {
    check: 'checkpoints',
    what: 'masks secrets in checkpoints',
    driver: () => broken((inner) => ({ setCheckpoint: (s, cp, f) => inner.setCheckpoint(s, redact(cp), f) })),
    message: /the checkpoint of s after a reopen: expected ".*", got ".*\[REDACTED\]/,
  },
  {
    check: 'checkpoints',
    what: 'clears the checkpoints of every sync',
    driver: () => broken((_inner, store) => ({ clearCheckpoint: async () => store.checkpoints.clear() })),
    message: /the checkpoint of t after clearCheckpoint\("s"\): expected "lsn:9", got undefined/,
  },
  {
    check: 'rowErrors',
    what: 'never counts attempts',
    driver: () =>
      broken((inner, store) => ({
        recordRowError: async (sync, e) => {
          store.rowErrors.delete(`${sync}\0${e.key}`);
          return inner.recordRowError(sync, e);
        },
      })),
    message: /the row error of k1 after two failures: expected \{.*"attempts":2\}, got \{.*"attempts":1\}/,
  },
  {
    check: 'rowErrors',
    what: 'keeps the first op and reason',
    driver: () =>
      broken((inner, store) => ({
        recordRowError: async (sync, e) => {
          const before = store.rowErrors.get(`${sync}\0${e.key}`);
          return inner.recordRowError(sync, before ? { ...e, op: before.op, reason: before.reason } : e);
        },
      })),
    message: /the row error of k1 after two failures: expected \{.*"op":"insert","reason":"still bad".*, got \{.*"op":"update","reason":"bad email"/,
  },
  {
    check: 'parking',
    what: 'counts attempts across versions of the row',
    driver: () => broken((inner) => ({ recordRowError: (sync, e) => inner.recordRowError(sync, { ...e, version: null }) })),
    message: /\[attempts, parked\] of step 4 \(version "v2".*\): expected \[1,false\], got \[4,true\]/,
  },
  {
    check: 'parking',
    what: 'parks a retryable error without maxAttempts at once',
    driver: () => broken((inner) => ({ recordRowError: (sync, e) => inner.recordRowError(sync, { ...e, maxAttempts: e.maxAttempts ?? 1 }) })),
    message: /\[attempts, parked\] of a retryable error without maxAttempts: expected \[1,false\], got \[1,true\]/,
  },
  {
    check: 'resolve',
    what: 'resolves the keys in every sync',
    driver: () =>
      broken((inner, store) => ({
        resolveRowErrors: async (sync, keys) => {
          await inner.resolveRowErrors(sync, keys);
          for (const [id, e] of store.rowErrors) if (keys.includes(e.key)) store.rowErrors.delete(id);
        },
      })),
    message: /countRowErrors\("t"\) after resolving keys of s \(t has k1 too\): expected 1, got 0/,
  },
  {
    check: 'resolve',
    what: 'resolves only the first 1000 keys of a call',
    driver: () => broken((inner) => ({ resolveRowErrors: (sync, keys) => inner.resolveRowErrors(sync, keys.slice(0, 1000)) })),
    message: /the row errors of s after resolving 1400 of them: expected \["k1400",/,
  },
  {
    check: 'kv',
    what: 'shares one store among all connections',
    driver: () => broken((inner) => ({ kv: () => inner.kv('shared') })),
    message: /kv\("hubspot"\)\.get\("cursor"\) after setting a then b: expected "b", got "z"/,
  },
  {
    check: 'kv',
    what: 'masks secrets in key-value entries',
    driver: () =>
      broken((inner) => ({
        kv: (scope) => {
          const kv = inner.kv(scope);
          return { ...kv, set: (k, v) => kv.set(k, redact(v)) };
        },
      })),
    message: /a key-value entry holding a secret's text, read back \(machine state is never masked\): expected "tok_\w+", got "\[REDACTED\]"/,
  },
  {
    check: 'redaction',
    what: "writes a run's error as given",
    driver: () =>
      broken((inner, store) => ({
        finishRun: async (id, status, counts, error, fence) => {
          await inner.finishRun(id, status, counts, error, fence);
          const run = store.runs.find((r) => r.id === id)!;
          if (error !== undefined) run.error = error;
        },
      })),
    message: /a run's error holding a registered secret reads back as "401 for token sk_live_\w+"/,
  },
  {
    check: 'redaction',
    what: "writes a row error's reason as given",
    driver: () =>
      broken((inner, store) => ({
        recordRowError: async (sync, e) => {
          const row = await inner.recordRowError(sync, e);
          store.rowErrors.get(`${sync}\0${e.key}`)!.reason = e.reason;
          return row;
        },
      })),
    message: /a row error's reason holding a registered secret reads back as "echoed/,
  },
  {
    check: 'shared',
    what: 'gives each instance a store of its own',
    driver: () => broken(() => ({}), (ledgers, name) => ledgers.open(`${name}-${randomBytes(3).toString('hex')}`)),
    message: /another instance's listRuns\(\) during a run: expected \[\[\d+,"running",7\]\], got \[\]/,
  },
  {
    check: 'leaseExclusive',
    what: 'grants the lease to whoever asks',
    driver: () => broken((_inner, store) => ({ acquireLease: async (sync, owner, ttl) => grantRaw(store, sync, owner, ttl, (store.leases.get(sync)?.token ?? 0) + 1) })),
    message: /runner-b asking for s while runner-a's lease runs: expected undefined, got \{/,
  },
  {
    check: 'leaseExclusive',
    what: 'gives its holder a new token each time it asks',
    driver: () =>
      broken((inner, store) => ({
        acquireLease: async (sync, owner, ttl) => {
          const grant = await inner.acquireLease(sync, owner, ttl);
          return grant && grantRaw(store, sync, owner, ttl, grant.token + 1);
        },
      })),
    message: /the token of a lease asked for again by its holder: expected \d+, got \d+/,
  },
  {
    check: 'leaseRace',
    what: 'reads the lease and writes it in two steps',
    driver: () =>
      broken((inner, store) => ({
        acquireLease: async (sync, owner, ttl) => {
          const holder = await inner.leaseHolder(sync);
          await sleep(5);
          if (holder && !holder.expired && holder.owner !== owner) return undefined;
          return grantRaw(store, sync, owner, ttl, (holder?.token ?? 0) + 1);
        },
      })),
    message: /6 instances asked for the free lease of s0 at once: [2-6] got it/,
  },
  {
    check: 'leaseExpiry',
    what: 'never lets a lease expire',
    driver: () => broken((inner) => ({ acquireLease: (sync, owner) => inner.acquireLease(sync, owner, 24 * 3600_000) })),
    message: /leaseHolder\("s"\) 700 ms after runner-a took it for 200 ms: expected \{"owner":"runner-a","expired":true\}, got \{"owner":"runner-a","expired":false\}/,
  },
  {
    check: 'leaseExpiry',
    what: 'keeps the token when another owner takes an expired lease over',
    driver: () =>
      broken((inner, store) => ({
        acquireLease: async (sync, owner, ttl) => {
          const before = store.leases.get(sync)?.token;
          const grant = await inner.acquireLease(sync, owner, ttl);
          return grant && before !== undefined ? grantRaw(store, sync, owner, ttl, before) : grant;
        },
      })),
    message: /the token of a takeover \((\d+)\) must be greater than the expired grant's \(\1\)/,
  },
  {
    check: 'leaseExpiry',
    what: 'lets a former holder renew a lease taken over',
    driver: () => broken((_inner, store) => ({ renewLease: async (g, ttl) => grantRaw(store, g.sync, g.owner, ttl, g.token) })),
    message: /runner-a renewing its lease after runner-b took it over went through; it must be refused with OUTFLOW_LEASE_LOST/,
  },
  {
    check: 'leaseRelease',
    what: 'lets anyone release a lease',
    driver: () =>
      broken((_inner, store) => ({
        releaseLease: async (sync) => {
          const lease = store.leases.get(sync);
          if (lease) lease.owner = null;
        },
      })),
    message: /runner-b asking for s after releasing a lease it does not hold: expected undefined, got \{/,
  },
  {
    check: 'leaseRelease',
    what: 'forgets the token when a lease is released',
    driver: () =>
      broken((_inner, store) => ({
        releaseLease: async (sync, owner) => {
          if (store.leases.get(sync)?.owner === owner) store.leases.delete(sync);
        },
      })),
    message: /the token of a grant after a release \(1\) must be greater than the released grant's \(1\)/,
  },
  {
    check: 'leaseRenewal',
    what: 'renews without moving the expiry',
    driver: () =>
      broken((inner, store) => ({
        renewLease: async (g, ttl) => {
          const before = store.leases.get(g.sync)?.expiresAt ?? 0;
          const grant = await inner.renewLease(g, ttl);
          store.leases.get(g.sync)!.expiresAt = before;
          return { ...grant, expiresAt: new Date(before).toISOString() };
        },
      })),
    message: /renewing for 60000 ms a lease taken for 1 s moved its expiry from (\S+) to \1/,
  },
  {
    check: 'leaseRenewal',
    what: 'lets another owner renew',
    driver: () =>
      broken((inner, store) => ({
        renewLease: async (g, ttl) => {
          const lease = store.leases.get(g.sync);
          return lease && lease.owner !== null ? inner.renewLease({ ...g, owner: lease.owner, token: lease.token }, ttl) : inner.renewLease(g, ttl);
        },
      })),
    message: /runner-b renewing runner-a's lease went through; it must be refused with OUTFLOW_LEASE_LOST/,
  },
  {
    check: 'leaseRenewal',
    what: 'refuses to renew an expired lease no one took over',
    driver: () =>
      broken((inner, store) => ({
        renewLease: async (g, ttl) => {
          const lease = store.leases.get(g.sync);
          if (lease && lease.expiresAt <= Date.now()) throw lost(g.sync);
          return inner.renewLease(g, ttl);
        },
      })),
    message: /renewLease\(\) of an expired lease no one took over failed: OUTFLOW_LEASE_LOST/,
  },
  {
    check: 'fencing',
    what: 'ignores the token',
    driver: () =>
      broken((inner) => ({
        setCheckpoint: (s, cp) => inner.setCheckpoint(s, cp),
        clearCheckpoint: (s) => inner.clearCheckpoint(s),
        finishRun: (id, status, counts, error) => inner.finishRun(id, status, counts, error),
      })),
    message: /setCheckpoint\(\) with a token never granted went through; it must be refused with OUTFLOW_LEASE_LOST/,
  },
  {
    check: 'fencing',
    what: "fences checkpoints but not a run's finish",
    driver: () => broken((inner) => ({ finishRun: (id, status, counts, error) => inner.finishRun(id, status, counts, error) })),
    message: /finishRun\(\) with runner-a's token after runner-b took s over went through/,
  },
  {
    check: 'fencing',
    what: 'refuses a stale token with OUTFLOW_LEDGER',
    driver: () =>
      broken((inner) => ({
        setCheckpoint: (s, cp, f) =>
          inner.setCheckpoint(s, cp, f).catch((err: OutflowError) => {
            throw new OutflowError('OUTFLOW_LEDGER', err.message);
          }),
      })),
    message: /setCheckpoint\(\) with a token never granted must be refused with an OutflowError coded OUTFLOW_LEASE_LOST; got .*\(code "OUTFLOW_LEDGER"\)/,
  },
  {
    check: 'fencing',
    what: 'accepts the token of a released lease',
    driver: () =>
      broken((inner, store) => ({
        setCheckpoint: async (s, cp, f) => {
          const lease = store.leases.get(s);
          if (f !== undefined && lease?.owner === null && lease.token === f) return void store.checkpoints.set(s, cp);
          return inner.setCheckpoint(s, cp, f);
        },
      })),
    message: /setCheckpoint\(\) with the token of a released lease went through/,
  },
  {
    check: 'fencing',
    what: 'writes first and checks the token after',
    driver: () =>
      broken((inner, store) => ({
        setCheckpoint: async (s, cp, f) => {
          store.checkpoints.set(s, cp);
          inner.checkFence(s, f);
        },
        clearCheckpoint: async (s, f) => {
          store.checkpoints.delete(s);
          inner.checkFence(s, f);
        },
      })),
    message: /the checkpoint after writes with a stale token were refused: expected "c2", got undefined/,
  },
  {
    check: 'fencing',
    what: 'refuses writes that carry no token',
    driver: () =>
      broken((inner) => ({
        setCheckpoint: (s, cp, f) => (f === undefined ? Promise.reject(lost(s)) : inner.setCheckpoint(s, cp, f)),
      })),
    message: /setCheckpoint\(\) without a token failed: OUTFLOW_LEASE_LOST/,
  },
];

describe('the ledger suite catches a broken ledger', () => {
  it('has a broken variant for every check', () => {
    const covered = new Set(variants.map((v) => v.check));
    expect(Object.keys(ledgerChecks).filter((c) => !covered.has(c as CheckName))).toEqual([]);
  });

  for (const v of variants) {
    it(`${v.check} fails a ledger that ${v.what}`, async () => {
      const h = await startLedger(v.driver());
      try {
        const failure = await ledgerChecks[v.check](h).then(
          () => undefined,
          (err: unknown) => err,
        );
        expect(failure, 'the check passed').toBeInstanceOf(AcceptanceFailure);
        expect((failure as Error).message).toMatch(v.message);
      } finally {
        await h.close();
      }
    });
  }
});
