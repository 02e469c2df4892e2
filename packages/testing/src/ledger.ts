import { randomBytes } from 'node:crypto';
import { describe } from 'vitest';
import { describeError, isOutflowError, registerSecret, type LeaseGrant, type Ledger, type RunCounts, type RunRecord } from '@outflow/core';
import { AcceptanceFailure, DEFAULT_TIMEOUT_MS, fail, registerChecks, show, within, type Check } from './harness.js';

/** What {@link ledgerAcceptance} needs to exercise a ledger. */
export interface LedgerDriver {
  /** Shown in the test names. */
  name: string;
  /** Starts what the ledger needs (a database server). */
  setup?(): Promise<void>;
  /** Stops what `setup` started. */
  teardown?(): Promise<void>;
  /**
   * Opens an instance of the ledger over the store named `store` (a folder, a database
   * schema …). Every open of one name shares its data, as two runners sharing one ledger
   * do; a name never opened before starts empty. Each check uses stores of its own, and the
   * suite closes every instance it opened.
   */
  open(store: string): Ledger | Promise<Ledger>;
  /** Check ids to leave out, each with a reason in your test. */
  skip?: string[];
  /** How long a single call may take before the suite calls it a hang; 15 000 ms by default. */
  timeoutMs?: number;
}

/** A started ledger under test. */
export interface LedgerHarness {
  driver: LedgerDriver;
  timeoutMs: number;
  /** Opens an instance over store `store` of this harness (names are unique to this harness). */
  open(store: string): Promise<Ledger>;
  /** Closes every instance opened, then runs the driver's teardown. */
  close(): Promise<void>;
}

/** Starts the driver. */
export async function startLedger(driver: LedgerDriver): Promise<LedgerHarness> {
  await driver.setup?.();
  const run = randomBytes(3).toString('hex');
  const timeoutMs = driver.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const opened: Ledger[] = [];
  return {
    driver,
    timeoutMs,
    async open(store) {
      const ledger = await within(Promise.resolve(driver.open(`${store}_${run}`)), timeoutMs, `open("${store}")`);
      opened.push(ledger);
      return ledger;
    },
    async close() {
      for (const l of opened.splice(0)) await l.close().catch(() => undefined);
      await driver.teardown?.();
    },
  };
}

const ZERO: RunCounts = { inserted: 0, updated: 0, deleted: 0, rejected: 0, skipped: 0 };
/** Long enough to expire within a check, short enough to wait out. */
const SHORT_MS = 200;
/** Comfortably past {@link SHORT_MS}, on a loaded machine too. */
const EXPIRED_AFTER_MS = 700;
const LONG_MS = 60_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Awaits a ledger call, failing as a hang after the harness's timeout, or naming the call when it throws. */
async function call<T>(h: LedgerHarness, promise: Promise<T>, what: string): Promise<T> {
  try {
    return await within(promise, h.timeoutMs, what);
  } catch (err) {
    if (err instanceof AcceptanceFailure) throw err;
    fail(`${what} failed: ${describeError(err)}`);
  }
}

function equal(actual: unknown, expected: unknown, what: string): void {
  if (show(actual, 2000) !== show(expected, 2000)) fail(`${what}: expected ${show(expected)}, got ${show(actual)}`);
}

/** Expects `promise` to be refused with an OutflowError of `code` whose message names `sync`. */
async function refused(h: LedgerHarness, promise: Promise<unknown>, code: 'OUTFLOW_LEASE_LOST' | 'OUTFLOW_LEDGER', what: string, names?: string): Promise<void> {
  const outcome = await within(promise, h.timeoutMs, what).then(
    () => undefined,
    (err: unknown) => err,
  );
  if (outcome === undefined) fail(`${what} went through; it must be refused with ${code}`);
  if (!isOutflowError(outcome, code)) {
    fail(`${what} must be refused with an OutflowError coded ${code}; got ${describeError(outcome)} (code ${show((outcome as { code?: unknown })?.code)})`);
  }
  if (names !== undefined && !outcome.message.includes(names)) fail(`${what}: the ${code} message must name "${names}"; got "${outcome.message}"`);
}

const byId = (runs: RunRecord[]) => new Map(runs.map((r) => [r.id, r]));

function grantOf(grant: LeaseGrant | undefined, what: string): LeaseGrant {
  if (grant === undefined) fail(`${what}: the lease was refused; expected a grant`);
  if (!Number.isSafeInteger(grant.token) || grant.token <= 0) fail(`${what}: the grant's token must be a positive integer; got ${show(grant.token)}`);
  if (Number.isNaN(Date.parse(grant.expiresAt))) fail(`${what}: the grant's expiresAt is not a time: ${show(grant.expiresAt)}`);
  return grant;
}

export const ledgerChecks = {
  /** A run is recorded from start to finish with its counts; a run that does not exist cannot be updated or finished. */
  async runs(h: LedgerHarness): Promise<void> {
    const l = await h.open('runs');
    const id = await call(h, l.startRun('contacts', 'diff'), 'startRun()');
    await call(h, l.updateRun(id, { ...ZERO, inserted: 3 }), 'updateRun()');
    const running = (await call(h, l.listRuns(), 'listRuns()'))[0];
    equal(running && { id: running.id, sync: running.sync, capture: running.capture, status: running.status, inserted: running.inserted }, { id, sync: 'contacts', capture: 'diff', status: 'running', inserted: 3 }, 'a run in progress after updateRun()');
    if (running!.finishedAt !== undefined) fail(`a run in progress has finishedAt ${show(running!.finishedAt)}`);
    if (Number.isNaN(Date.parse(running!.startedAt))) fail(`startedAt is not a time: ${show(running!.startedAt)}`);
    const counts = { inserted: 5, updated: 4, deleted: 3, rejected: 2, skipped: 1 };
    await call(h, l.finishRun(id, 'partial', counts, 'two rejected'), 'finishRun()');
    const done = (await call(h, l.listRuns(), 'listRuns()'))[0]!;
    equal({ status: done.status, ...pick(done), error: done.error }, { status: 'partial', ...counts, error: 'two rejected' }, 'a finished run');
    if (done.finishedAt === undefined || Date.parse(done.finishedAt) < Date.parse(done.startedAt)) fail(`a finished run has finishedAt ${show(done.finishedAt)}, before startedAt ${done.startedAt} or missing`);
    if (typeof done.durationMs !== 'number' || done.durationMs < 0) fail(`a finished run has durationMs ${show(done.durationMs)}`);
    const missing = id + 1000;
    await refused(h, l.finishRun(missing, 'succeeded', ZERO), 'OUTFLOW_LEDGER', `finishRun(${missing}) of a run that does not exist`);
    await refused(h, l.updateRun(missing, ZERO), 'OUTFLOW_LEDGER', `updateRun(${missing}) of a run that does not exist`);
  },

  /** listRuns: newest first, per sync, up to a limit. */
  async listRuns(h: LedgerHarness): Promise<void> {
    const l = await h.open('list-runs');
    const a1 = await call(h, l.startRun('a', 'diff'), 'startRun()');
    const b1 = await call(h, l.startRun('b', 'stream'), 'startRun()');
    const a2 = await call(h, l.startRun('a', 'diff'), 'startRun()');
    const ids = async (o?: { sync?: string; limit?: number }) => (await call(h, l.listRuns(o), `listRuns(${show(o ?? {})})`)).map((r) => r.id);
    equal(await ids(), [a2, b1, a1], 'listRuns() of runs a1, b1, a2 started in that order');
    equal(await ids({ sync: 'a' }), [a2, a1], 'listRuns({ sync: "a" })');
    equal(await ids({ limit: 2 }), [a2, b1], 'listRuns({ limit: 2 })');
    equal((await call(h, l.listRuns({ sync: 'b', limit: 5 }), 'listRuns()')).map((r) => [r.id, r.capture]), [[b1, 'stream']], 'listRuns({ sync: "b", limit: 5 })');
    equal(await ids({ sync: 'none' }), [], 'listRuns({ sync: "none" })');
  },

  /** abandonRunningRuns marks the sync's running runs aborted, and only those. */
  async abandon(h: LedgerHarness): Promise<void> {
    const l = await h.open('abandon');
    const done = await call(h, l.startRun('s', 'diff'), 'startRun()');
    await call(h, l.finishRun(done, 'succeeded', ZERO), 'finishRun()');
    const dead1 = await call(h, l.startRun('s', 'diff'), 'startRun()');
    const dead2 = await call(h, l.startRun('s', 'stream'), 'startRun()');
    const other = await call(h, l.startRun('t', 'diff'), 'startRun()');
    equal(await call(h, l.abandonRunningRuns('s'), 'abandonRunningRuns("s")'), 2, 'abandonRunningRuns("s") with two runs of s running');
    const runs = byId(await call(h, l.listRuns(), 'listRuns()'));
    for (const id of [dead1, dead2]) {
      const r = runs.get(id);
      if (r?.status !== 'aborted' || r.finishedAt === undefined || !r.error) fail(`run ${id}, left running, after abandonRunningRuns(): ${show(r)}; expected aborted with finishedAt and an error saying why`);
    }
    equal([runs.get(done)?.status, runs.get(other)?.status], ['succeeded', 'running'], 'a finished run of s and a running run of t after abandonRunningRuns("s")');
    equal(await call(h, l.abandonRunningRuns('s'), 'abandonRunningRuns("s")'), 0, 'abandonRunningRuns("s") again');
  },

  /** registerSync returns the previous configuration hash only when it changed. */
  async registerSync(h: LedgerHarness): Promise<void> {
    const l = await h.open('register');
    const steps: [string, string, object][] = [
      ['contacts', 'h1', {}],
      ['contacts', 'h1', {}],
      ['contacts', 'h2', { previousHash: 'h1' }],
      ['contacts', 'h2', {}],
      ['deals', 'h1', {}],
    ];
    for (const [i, [sync, hash, want]] of steps.entries()) {
      equal(await call(h, l.registerSync(sync, hash), 'registerSync()'), want, `registerSync("${sync}", "${hash}") (step ${i + 1} of ${show(steps.map((s) => s.slice(0, 2)))})`);
    }
  },

  /** Checkpoints are set, replaced and cleared per sync, survive a reopen, and read back exactly as written. */
  async checkpoints(h: LedgerHarness): Promise<void> {
    const first = await h.open('checkpoints');
    equal(await call(h, first.getCheckpoint('s'), 'getCheckpoint()'), undefined, 'the checkpoint of a sync never saved');
    // Machine state is never masked, even when it happens to hold a secret's text.
    const secret = `sk_live_${randomBytes(6).toString('hex')}`;
    registerSecret(secret);
    const exact = `{"lsn":"0/16B3748","after":"${secret}","text":"ünïcode \\u0000 '; DROP"}`;
    await call(h, first.setCheckpoint('s', 'lsn:1'), 'setCheckpoint()');
    await call(h, first.setCheckpoint('s', exact), 'setCheckpoint()');
    await call(h, first.setCheckpoint('t', 'lsn:9'), 'setCheckpoint()');
    await call(h, first.close(), 'close()');
    const second = await h.open('checkpoints');
    equal(await call(h, second.getCheckpoint('s'), 'getCheckpoint()'), exact, 'the checkpoint of s after a reopen');
    await call(h, second.clearCheckpoint('s'), 'clearCheckpoint()');
    equal(await call(h, second.getCheckpoint('s'), 'getCheckpoint()'), undefined, 'the checkpoint of s after clearCheckpoint("s")');
    equal(await call(h, second.getCheckpoint('t'), 'getCheckpoint()'), 'lsn:9', 'the checkpoint of t after clearCheckpoint("s")');
  },

  /** A row error counts attempts, keeps firstSeen, moves lastSeen and takes the latest op and reason. */
  async rowErrors(h: LedgerHarness): Promise<void> {
    const l = await h.open('row-errors');
    await call(h, l.recordRowError('s', { key: 'k1', op: 'update', reason: 'bad email', retryable: false }), 'recordRowError()');
    await sleep(15);
    const second = await call(h, l.recordRowError('s', { key: 'k1', op: 'insert', reason: 'still bad', retryable: true }), 'recordRowError()');
    const [e] = await call(h, l.listRowErrors({ sync: 's' }), 'listRowErrors()');
    equal(e && { sync: e.sync, key: e.key, op: e.op, reason: e.reason, retryable: e.retryable, attempts: e.attempts }, { sync: 's', key: 'k1', op: 'insert', reason: 'still bad', retryable: true, attempts: 2 }, 'the row error of k1 after two failures');
    equal(second.attempts, 2, 'the attempts recordRowError() returned for the second failure');
    if (!(Date.parse(e!.lastSeen) > Date.parse(e!.firstSeen))) fail(`after a second failure lastSeen (${e!.lastSeen}) must be after firstSeen (${e!.firstSeen})`);
    await call(h, l.recordRowError('s', { key: 'k1', op: 'insert', reason: 'again', retryable: false }), 'recordRowError()');
    const [again] = await call(h, l.listRowErrors(), 'listRowErrors()');
    equal(again && { attempts: again.attempts, firstSeen: again.firstSeen, retryable: again.retryable }, { attempts: 3, firstSeen: e!.firstSeen, retryable: false }, 'the row error of k1 after a third failure');
  },

  /** A retryable error is parked once its attempts reach maxAttempts; a new version starts again; a refusal parks at once. */
  async parking(h: LedgerHarness): Promise<void> {
    const l = await h.open('parking');
    const fail3 = async (version: string | null, retryable = true) => {
      const e = await call(h, l.recordRowError('s', { key: 'k', op: 'upsert', reason: 'locked', retryable, version, maxAttempts: 3 }), 'recordRowError()');
      return [e.attempts, e.parked];
    };
    const steps: [string | null, boolean, [number, boolean]][] = [
      ['v1', true, [1, false]],
      ['v1', true, [2, false]],
      ['v1', true, [3, true]],
      ['v2', true, [1, false]],
      [null, true, [1, false]],
      [null, true, [2, false]],
      [null, false, [3, true]],
    ];
    for (const [i, [version, retryable, want]] of steps.entries()) {
      equal(await fail3(version, retryable), want, `[attempts, parked] of step ${i + 1} (version ${show(version)}, retryable ${retryable}, maxAttempts 3)`);
      if (i === 2) {
        equal(await call(h, l.countRowErrors('s', { parked: true }), 'countRowErrors()'), 1, 'countRowErrors("s", { parked: true }) with k parked');
        equal(await call(h, l.countRowErrors('s', { parked: false }), 'countRowErrors()'), 0, 'countRowErrors("s", { parked: false }) with k parked');
      }
    }
    const other = await call(h, l.recordRowError('s', { key: 'other', op: 'insert', reason: 'bad', retryable: false }), 'recordRowError()');
    equal([other.attempts, other.parked], [1, true], '[attempts, parked] of a first non-retryable error');
    const free = await call(h, l.recordRowError('s', { key: 'free', op: 'insert', reason: 'busy', retryable: true }), 'recordRowError()');
    equal([free.attempts, free.parked], [1, false], '[attempts, parked] of a retryable error without maxAttempts');
    const listed = (await call(h, l.listRowErrors({ sync: 's' }), 'listRowErrors()')).map((e) => [e.key, e.parked]).sort();
    equal(listed, [['free', false], ['k', true], ['other', true]], 'the row errors of s, parked or not');
  },

  /** Row errors are listed and counted per sync, and resolved by key in large numbers. */
  async resolve(h: LedgerHarness): Promise<void> {
    const l = await h.open('resolve');
    const n = 1500;
    for (let i = 0; i < n; i++) await call(h, l.recordRowError('s', { key: `k${i}`, op: 'insert', reason: 'rejected', retryable: false }), 'recordRowError()');
    await call(h, l.recordRowError('t', { key: 'k1', op: 'delete', reason: 'gone', retryable: true }), 'recordRowError()');
    equal(await call(h, l.countRowErrors('s'), 'countRowErrors()'), n, `countRowErrors("s") after ${n} row errors`);
    equal((await call(h, l.listRowErrors({ sync: 's', limit: 10 }), 'listRowErrors()')).length, 10, 'listRowErrors({ sync: "s", limit: 10 }).length');
    equal((await call(h, l.listRowErrors(), 'listRowErrors()')).length, n + 1, 'listRowErrors().length');
    const resolved = Array.from({ length: n - 100 }, (_, i) => `k${i}`);
    await call(h, l.resolveRowErrors('s', [...resolved, 'never-failed']), 'resolveRowErrors()');
    const left = (await call(h, l.listRowErrors({ sync: 's' }), 'listRowErrors()')).map((e) => e.key).sort();
    equal(left, Array.from({ length: 100 }, (_, i) => `k${n - 100 + i}`).sort(), `the row errors of s after resolving ${resolved.length} of them`);
    equal(await call(h, l.countRowErrors('t'), 'countRowErrors()'), 1, 'countRowErrors("t") after resolving keys of s (t has k1 too)');
    await call(h, l.resolveRowErrors('s', []), 'resolveRowErrors([])');
    equal(await call(h, l.countRowErrors('s'), 'countRowErrors()'), 100, 'countRowErrors("s") after resolveRowErrors("s", [])');
  },

  /** Each connection's key-value store is its own, and another instance reads it. */
  async kv(h: LedgerHarness): Promise<void> {
    const l = await h.open('kv');
    const hubspot = l.kv('hubspot');
    const webhook = l.kv('webhook');
    await call(h, hubspot.set('cursor', 'a'), 'kv.set()');
    await call(h, hubspot.set('cursor', 'b'), 'kv.set()');
    await call(h, webhook.set('cursor', 'z'), 'kv.set()');
    equal(await call(h, hubspot.get('cursor'), 'kv.get()'), 'b', 'kv("hubspot").get("cursor") after setting a then b');
    equal(await call(h, webhook.get('cursor'), 'kv.get()'), 'z', 'kv("webhook").get("cursor")');
    await call(h, hubspot.delete('cursor'), 'kv.delete()');
    equal(await call(h, hubspot.get('cursor'), 'kv.get()'), undefined, 'kv("hubspot").get("cursor") after delete');
    equal(await call(h, webhook.get('cursor'), 'kv.get()'), 'z', 'kv("webhook").get("cursor") after deleting hubspot\'s');
    const secret = `tok_${randomBytes(6).toString('hex')}`;
    registerSecret(secret);
    await call(h, webhook.set('token', secret), 'kv.set()');
    const other = await h.open('kv');
    equal(await call(h, other.kv('webhook').get('cursor'), 'kv.get()'), 'z', 'kv("webhook").get("cursor") read by another instance');
    equal(await call(h, other.kv('webhook').get('token'), 'kv.get()'), secret, 'a key-value entry holding a secret\'s text, read back (machine state is never masked)');
  },

  /** What people read (run errors, row-error reasons) is redacted before it is written. */
  async redaction(h: LedgerHarness): Promise<void> {
    const secret = `sk_live_${randomBytes(6).toString('hex')}`;
    registerSecret(secret);
    const l = await h.open('redaction');
    const id = await call(h, l.startRun('s', 'diff'), 'startRun()');
    await call(h, l.finishRun(id, 'failed', ZERO, `401 for token ${secret}`), 'finishRun()');
    await call(h, l.recordRowError('s', { key: 'k1', op: 'insert', reason: `echoed ${JSON.stringify({ auth: secret })} back`, retryable: false }), 'recordRowError()');
    const other = await h.open('redaction');
    const run = (await call(h, other.listRuns(), 'listRuns()'))[0];
    const row = (await call(h, other.listRowErrors(), 'listRowErrors()'))[0];
    if (!run?.error || run.error.includes(secret) || !run.error.includes('[REDACTED]')) fail(`a run's error holding a registered secret reads back as ${show(run?.error)}; expected it masked as [REDACTED]`);
    if (!row || row.reason.includes(secret) || !row.reason.includes('[REDACTED]')) fail(`a row error's reason holding a registered secret reads back as ${show(row?.reason)}; expected it masked as [REDACTED]`);
  },

  /** A second instance over the same store sees a run in progress, row errors and checkpoints at once. */
  async shared(h: LedgerHarness): Promise<void> {
    const writer = await h.open('shared');
    const reader = await h.open('shared');
    const id = await call(h, writer.startRun('contacts', 'diff'), 'startRun()');
    await call(h, writer.updateRun(id, { ...ZERO, updated: 7 }), 'updateRun()');
    await call(h, writer.setCheckpoint('contacts', 'c7'), 'setCheckpoint()');
    await call(h, writer.recordRowError('contacts', { key: 'k', op: 'update', reason: 'bad', retryable: false }), 'recordRowError()');
    const runs = await call(h, reader.listRuns(), 'listRuns()');
    equal(runs.map((r) => [r.id, r.status, r.updated]), [[id, 'running', 7]], "another instance's listRuns() during a run");
    equal(await call(h, reader.getCheckpoint('contacts'), 'getCheckpoint()'), 'c7', "another instance's getCheckpoint()");
    equal(await call(h, reader.countRowErrors('contacts'), 'countRowErrors()'), 1, "another instance's countRowErrors()");
  },

  /** One owner holds a sync's lease at a time, across instances; its holder can ask again and keeps its token. */
  async leaseExclusive(h: LedgerHarness): Promise<void> {
    const a = await h.open('lease-exclusive');
    const b = await h.open('lease-exclusive');
    const grant = grantOf(await call(h, a.acquireLease('s', 'runner-a', LONG_MS), 'acquireLease()'), 'runner-a taking the free lease of s');
    equal([grant.sync, grant.owner], ['s', 'runner-a'], "the grant's sync and owner");
    if (Date.parse(grant.expiresAt) - Date.now() < LONG_MS / 2) fail(`a lease taken for ${LONG_MS} ms expires at ${grant.expiresAt}, too soon`);
    equal(await call(h, b.acquireLease('s', 'runner-b', LONG_MS), 'acquireLease()'), undefined, "runner-b asking for s while runner-a's lease runs");
    const again = grantOf(await call(h, a.acquireLease('s', 'runner-a', LONG_MS), 'acquireLease()'), 'runner-a asking again for the lease it holds');
    equal(again.token, grant.token, 'the token of a lease asked for again by its holder');
    grantOf(await call(h, b.acquireLease('other', 'runner-b', LONG_MS), 'acquireLease()'), 'runner-b taking the lease of another sync');
    const holder = await call(h, b.leaseHolder('s'), 'leaseHolder()');
    equal(holder && { owner: holder.owner, token: holder.token, expired: holder.expired }, { owner: 'runner-a', token: grant.token, expired: false }, "leaseHolder('s') read by another instance");
    equal(await call(h, b.leaseHolder('never'), 'leaseHolder()'), undefined, 'leaseHolder() of a sync never leased');
  },

  /** Many instances asking for one free lease at once: exactly one gets it. */
  async leaseRace(h: LedgerHarness): Promise<void> {
    const instances = await Promise.all(Array.from({ length: 6 }, () => h.open('lease-race')));
    for (let round = 0; round < 3; round++) {
      const sync = `s${round}`;
      const grants = await call(h, Promise.all(instances.map((l, i) => l.acquireLease(sync, `runner-${i}`, LONG_MS))), 'acquireLease() from 6 instances at once');
      const winners = grants.flatMap((g, i) => (g ? [`runner-${i}`] : []));
      if (winners.length !== 1) fail(`6 instances asked for the free lease of ${sync} at once: ${winners.length} got it (${winners.join(', ') || 'none'}); exactly one must`);
      const holder = await call(h, instances[0]!.leaseHolder(sync), 'leaseHolder()');
      equal(holder?.owner, winners[0], `leaseHolder("${sync}") after the race`);
    }
  },

  /** An expired lease may be taken over by another owner, with a greater token; its former holder can neither renew nor take it. */
  async leaseExpiry(h: LedgerHarness): Promise<void> {
    const a = await h.open('lease-expiry');
    const b = await h.open('lease-expiry');
    const first = grantOf(await call(h, a.acquireLease('s', 'runner-a', SHORT_MS), 'acquireLease()'), `runner-a taking s for ${SHORT_MS} ms`);
    await sleep(EXPIRED_AFTER_MS);
    const expired = await call(h, b.leaseHolder('s'), 'leaseHolder()');
    equal(expired && { owner: expired.owner, expired: expired.expired }, { owner: 'runner-a', expired: true }, `leaseHolder("s") ${EXPIRED_AFTER_MS} ms after runner-a took it for ${SHORT_MS} ms`);
    const second = grantOf(await call(h, b.acquireLease('s', 'runner-b', LONG_MS), 'acquireLease()'), `runner-b taking over s ${EXPIRED_AFTER_MS} ms after runner-a took it for ${SHORT_MS} ms`);
    if (!(second.token > first.token)) fail(`the token of a takeover (${second.token}) must be greater than the expired grant's (${first.token})`);
    equal(await call(h, a.acquireLease('s', 'runner-a', LONG_MS), 'acquireLease()'), undefined, 'runner-a asking for s again after runner-b took it over');
    await refused(h, a.renewLease(first, LONG_MS), 'OUTFLOW_LEASE_LOST', 'runner-a renewing its lease after runner-b took it over', 's');
    equal((await call(h, a.leaseHolder('s'), 'leaseHolder()'))?.owner, 'runner-b', 'leaseHolder("s") after runner-a tried to renew');
  },

  /** A released lease is free at once; releasing a lease one does not hold changes nothing. */
  async leaseRelease(h: LedgerHarness): Promise<void> {
    const a = await h.open('lease-release');
    const b = await h.open('lease-release');
    const first = grantOf(await call(h, a.acquireLease('s', 'runner-a', LONG_MS), 'acquireLease()'), 'runner-a taking s');
    await call(h, b.releaseLease('s', 'runner-b'), 'releaseLease()');
    equal(await call(h, b.acquireLease('s', 'runner-b', LONG_MS), 'acquireLease()'), undefined, 'runner-b asking for s after releasing a lease it does not hold');
    await call(h, a.releaseLease('s', 'runner-a'), 'releaseLease()');
    equal(await call(h, b.leaseHolder('s'), 'leaseHolder()'), undefined, 'leaseHolder("s") after its holder released it');
    const second = grantOf(await call(h, b.acquireLease('s', 'runner-b', LONG_MS), 'acquireLease()'), 'runner-b taking s after runner-a released it');
    if (!(second.token > first.token)) fail(`the token of a grant after a release (${second.token}) must be greater than the released grant's (${first.token})`);
    equal(await call(h, a.acquireLease('s', 'runner-a', LONG_MS), 'acquireLease()'), undefined, 'runner-a asking for s while runner-b holds it');
    await call(h, b.releaseLease('s', 'runner-b'), 'releaseLease()');
    const third = grantOf(await call(h, a.acquireLease('s', 'runner-a', LONG_MS), 'acquireLease()'), 'runner-a taking s again after runner-b released it');
    if (!(third.token > second.token)) fail(`the token of a later grant to a former holder (${third.token}) must be greater than the one before (${second.token})`);
  },

  /** Only the holder renews, keeping its token and pushing the expiry out; a renewed lease is not taken over. */
  async leaseRenewal(h: LedgerHarness): Promise<void> {
    const a = await h.open('lease-renewal');
    const b = await h.open('lease-renewal');
    const grant = grantOf(await call(h, a.acquireLease('s', 'runner-a', 1000), 'acquireLease()'), 'runner-a taking s for 1 s');
    const renewed = await call(h, a.renewLease(grant, LONG_MS), 'renewLease()');
    equal([renewed.sync, renewed.owner, renewed.token], ['s', 'runner-a', grant.token], 'the renewed grant (sync, owner, token)');
    if (!(Date.parse(renewed.expiresAt) > Date.parse(grant.expiresAt))) fail(`renewing for ${LONG_MS} ms a lease taken for 1 s moved its expiry from ${grant.expiresAt} to ${renewed.expiresAt}`);
    await refused(h, b.renewLease({ sync: 's', owner: 'runner-b', token: grant.token }, LONG_MS), 'OUTFLOW_LEASE_LOST', "runner-b renewing runner-a's lease", 's');
    await refused(h, b.renewLease({ sync: 's', owner: 'runner-a', token: grant.token + 1 }, LONG_MS), 'OUTFLOW_LEASE_LOST', 'renewing with a token never granted', 's');
    await refused(h, b.renewLease({ sync: 'free', owner: 'runner-b', token: 1 }, LONG_MS), 'OUTFLOW_LEASE_LOST', 'renewing a lease never taken', 'free');
    await sleep(1300);
    equal(await call(h, b.acquireLease('s', 'runner-b', LONG_MS), 'acquireLease()'), undefined, 'runner-b asking for s 1.3 s after runner-a took it for 1 s and renewed it for 60 s');
    // Expired but not taken over: no one else wrote under it, so its holder may renew it.
    const short = grantOf(await call(h, a.acquireLease('t', 'runner-a', SHORT_MS), 'acquireLease()'), 'runner-a taking t');
    await sleep(EXPIRED_AFTER_MS);
    const late = await call(h, a.renewLease(short, LONG_MS), 'renewLease() of an expired lease no one took over');
    equal(late.token, short.token, 'the token of an expired lease renewed by its holder');
    equal(await call(h, b.acquireLease('t', 'runner-b', LONG_MS), 'acquireLease()'), undefined, 'runner-b asking for t after runner-a renewed it late');
  },

  /** Checkpoint writes and a run's finish carry the lease's token; a stale token is refused with OUTFLOW_LEASE_LOST and changes nothing. */
  async fencing(h: LedgerHarness): Promise<void> {
    const a = await h.open('fencing');
    const b = await h.open('fencing');
    const first = grantOf(await call(h, a.acquireLease('s', 'runner-a', SHORT_MS), 'acquireLease()'), 'runner-a taking s');
    await call(h, a.setCheckpoint('s', 'c1', first.token), "setCheckpoint() with the holder's token");
    await call(h, a.clearCheckpoint('s', first.token), "clearCheckpoint() with the holder's token");
    await call(h, a.setCheckpoint('s', 'c2', first.token), "setCheckpoint() with the holder's token");
    const finished = await call(h, a.startRun('s', 'stream'), 'startRun()');
    await call(h, a.finishRun(finished, 'succeeded', { ...ZERO, inserted: 1 }, undefined, first.token), "finishRun() with the holder's token");
    await refused(h, a.setCheckpoint('s', 'never', first.token + 1), 'OUTFLOW_LEASE_LOST', 'setCheckpoint() with a token never granted', 's');
    const running = await call(h, a.startRun('s', 'stream'), 'startRun()');

    // runner-a pauses past its lease; runner-b takes the sync over.
    await sleep(EXPIRED_AFTER_MS);
    const second = grantOf(await call(h, b.acquireLease('s', 'runner-b', LONG_MS), 'acquireLease()'), 'runner-b taking over s');
    await refused(h, a.setCheckpoint('s', 'stale', first.token), 'OUTFLOW_LEASE_LOST', "setCheckpoint() with runner-a's token after runner-b took s over", 's');
    await refused(h, a.clearCheckpoint('s', first.token), 'OUTFLOW_LEASE_LOST', "clearCheckpoint() with runner-a's token after runner-b took s over", 's');
    await refused(h, a.finishRun(running, 'succeeded', { ...ZERO, inserted: 9 }, undefined, first.token), 'OUTFLOW_LEASE_LOST', "finishRun() with runner-a's token after runner-b took s over", 's');
    equal(await call(h, b.getCheckpoint('s'), 'getCheckpoint()'), 'c2', 'the checkpoint after writes with a stale token were refused');
    const runs = byId(await call(h, b.listRuns({ sync: 's' }), 'listRuns()'));
    equal([runs.get(finished)?.status, runs.get(running)?.status, runs.get(running)?.inserted], ['succeeded', 'running', 0], "the runs after runner-a's finish with a stale token was refused");
    await call(h, b.setCheckpoint('s', 'c3', second.token), "setCheckpoint() with runner-b's token");
    equal(await call(h, a.getCheckpoint('s'), 'getCheckpoint()'), 'c3', "the checkpoint runner-b wrote, read by runner-a's instance");

    // Released: its token is no longer good either.
    await call(h, b.releaseLease('s', 'runner-b'), 'releaseLease()');
    await refused(h, b.setCheckpoint('s', 'after-release', second.token), 'OUTFLOW_LEASE_LOST', 'setCheckpoint() with the token of a released lease', 's');
    equal(await call(h, a.getCheckpoint('s'), 'getCheckpoint()'), 'c3', 'the checkpoint after a write with a released token was refused');
    // A write without a token (a tool that holds no lease) is not checked.
    await call(h, a.setCheckpoint('s', 'by-hand'), 'setCheckpoint() without a token');
    equal(await call(h, b.getCheckpoint('s'), 'getCheckpoint()'), 'by-hand', 'the checkpoint after a write without a token');
  },
};

function pick(r: RunRecord): RunCounts {
  return { inserted: r.inserted, updated: r.updated, deleted: r.deleted, rejected: r.rejected, skipped: r.skipped };
}

export function ledgerCheckList(): Check<LedgerHarness>[] {
  const c = ledgerChecks;
  return [
    { id: 'runs', title: 'a run is recorded from start to finish; a missing run is refused with OUTFLOW_LEDGER', run: c.runs },
    { id: 'list-runs', title: 'listRuns(): newest first, per sync, up to a limit', run: c.listRuns },
    { id: 'abandon', title: "abandonRunningRuns() marks the sync's running runs aborted, and only those", run: c.abandon },
    { id: 'register-sync', title: 'registerSync() returns the previous configuration hash only when it changed', run: c.registerSync },
    { id: 'checkpoints', title: 'checkpoints: per sync, replaced, cleared, durable, exactly as written', run: c.checkpoints },
    { id: 'row-errors', title: 'a row error counts attempts, keeps firstSeen and moves lastSeen', run: c.rowErrors },
    { id: 'parking', title: 'row errors park at maxAttempts or when refused; a new version starts again', run: c.parking },
    { id: 'resolve', title: 'row errors are listed, counted and resolved per sync, many keys at once', run: c.resolve },
    { id: 'kv', title: "each connection's key-value store is its own, durable and shared", run: c.kv },
    { id: 'redaction', title: 'run errors and row-error reasons are redacted before they are written', run: c.redaction },
    { id: 'shared', title: 'a second instance over the same store sees every write at once', run: c.shared },
    { id: 'lease-exclusive', title: "one owner holds a sync's lease at a time, across instances", run: c.leaseExclusive },
    { id: 'lease-race', title: 'instances racing for a free lease: exactly one gets it', run: c.leaseRace },
    { id: 'lease-expiry', title: 'an expired lease is taken over with a greater token; its former holder cannot renew it', run: c.leaseExpiry },
    { id: 'lease-release', title: 'a released lease is free at once, and its next grant has a greater token', run: c.leaseRelease },
    { id: 'lease-renewal', title: 'only the holder renews, keeping its token; a renewed lease is not taken over', run: c.leaseRenewal },
    { id: 'fencing', title: 'checkpoint writes and run finishes with a stale token are refused with OUTFLOW_LEASE_LOST', run: c.fencing },
  ];
}

/**
 * Registers the ledger acceptance suite as vitest tests: the behaviours of a `Ledger` the
 * engine relies on (see packages/core/src/ledger/ledger.ts), several runners sharing one
 * ledger included. Each check uses stores of its own. Call it at the top level of a test file.
 */
export function ledgerAcceptance(driver: LedgerDriver): void {
  describe(`ledger acceptance: ${driver.name}`, () => {
    registerChecks(() => startLedger(driver), ledgerCheckList(), driver.skip);
  });
}
