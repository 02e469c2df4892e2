import { writeSync } from 'node:fs';

/**
 * Named crash points. Each marks a moment where a crash is hardest to recover from: a
 * write the destination applied but Outflow has not recorded, a checkpoint saved in the
 * ledger but not committed to the stream, and so on. They do nothing unless armed by the
 * `OUTFLOW_FAILPOINTS` environment variable, a comma-separated list of `name` or
 * `name:n`: the process kills itself with SIGKILL the n-th time (default the first) it
 * passes that point. Crash tests arm one point, run the real CLI, and check that a restart
 * converges with nothing lost and nothing created twice.
 */
export const FAILPOINTS = {
  /** A diff run read (and snapshotted) the model and computed the diff; nothing sent yet. */
  'diff.after-snapshot': 'after a snapshot is read, before any delivered state is written',
  /** The destination answered a batch; its outcomes are not yet recorded. */
  'delivery.after-write': 'after the destination applied a write, before its acknowledgement is logged',
  /** The same point, only in a reconciling diff of a stale stream. */
  'reconcile.after-write': 'during a reconcile, after the destination applied a write',
  /** A reconciling diff finished; the stream's checkpoint is not yet cleared. */
  'reconcile.after-diff': 'after a reconcile delivered, before the checkpoint is cleared',
  /** Acknowledgements are in the store's ack log; the fold into delivered state has not begun. */
  'state.before-fold': 'between the acknowledgement log and the fold into delivered state',
  /** Inside the fold's transaction, before it commits. */
  'state.inside-fold': 'during the fold of acknowledgements into delivered state',
  /** Inside a pushdown store's acknowledgement transaction, before it commits. */
  'state.inside-apply': 'during the write of acknowledgements to a pushdown store',
  /** A stream checkpoint is saved in the ledger and not yet committed to the stream. */
  'stream.checkpoint-saved': 'inside a checkpoint commit: saved in the ledger, not yet at the source',
  /** Postgres: the replication slot is about to be told how far it may advance. */
  'postgres.before-slot-advance': 'before the replication slot advances',
  /** Snowflake: a STREAM's changes were moved to the staging table (the STREAM advanced); none delivered yet. */
  'snowflake.after-stage': 'after the staging step committed, before its changes are delivered',
  /** Snowflake: a checkpoint is committed; its staged rows are not yet deleted. */
  'snowflake.before-unstage': 'inside the stream commit, before staged rows are deleted',
  /** Salesforce: a Bulk API job's data is uploaded (the job is kept in the connection's key-value store); not yet closed. */
  'salesforce.bulk-uploaded': "after a Bulk API job's upload, before it is marked UploadComplete",
  /** Salesforce: a Bulk API job is closed and Salesforce processes it; its results are not yet read. */
  'salesforce.bulk-closed': 'after a Bulk API job is marked UploadComplete, before its results are read',
} as const;

export type FailpointName = keyof typeof FAILPOINTS;

const ENV = 'OUTFLOW_FAILPOINTS';
let parsedFrom: string | undefined;
let armed = new Map<string, number>();
const hits = new Map<string, number>();

function parse(spec: string): Map<string, number> {
  const points = new Map<string, number>();
  for (const part of spec.split(',')) {
    const item = part.trim();
    if (!item) continue;
    const [name, n] = item.split(':');
    const at = n === undefined ? 1 : Number(n);
    if (!(name! in FAILPOINTS) || !Number.isInteger(at) || at < 1) {
      writeSync(2, `outflow: ${ENV} names "${item}", which is not a failpoint (known: ${Object.keys(FAILPOINTS).join(', ')}); ignored\n`);
      continue;
    }
    points.set(name!, at);
  }
  return points;
}

/**
 * Passes the named crash point: kills the process with SIGKILL when `OUTFLOW_FAILPOINTS`
 * arms it for this hit, and does nothing otherwise (the check is one environment read).
 */
export function failpoint(name: FailpointName): void {
  const spec = process.env[ENV];
  if (!spec) return;
  if (spec !== parsedFrom) {
    parsedFrom = spec;
    armed = parse(spec);
    hits.clear();
  }
  const at = armed.get(name);
  if (at === undefined) return;
  const n = (hits.get(name) ?? 0) + 1;
  hits.set(name, n);
  if (n !== at) return;
  writeSync(2, `outflow: failpoint ${name} reached (hit ${n}): killing the process\n`);
  process.kill(process.pid, 'SIGKILL');
}
