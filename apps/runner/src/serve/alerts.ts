/**
 * Alerts of `outflow serve`: per-sync rules (`alerts.rules`, or a sync's own `alerts`)
 * watched over runs, stream lag and time, each sent to `alerts.webhook` once per incident,
 * with a recovery notice when the incident resolves.
 *
 * An incident is one rule of one sync going from fine to breached; it stays open, whatever
 * happens meanwhile, until the rule is fine again. Open incidents are kept in the ledger
 * (key-value scope {@link INCIDENTS_SCOPE}), so a restarted process neither alerts again
 * about an incident it already reported nor forgets to send its recovery.
 *
 * Runners sharing a ledger each see the runs and lags of the syncs they run, but all of them
 * watch the clock: `noSuccessFor` is judged only by the runner holding the ledger lease
 * {@link WATCHER_LEASE}, so each of its incidents is sent once, not once per runner.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { describeError, parseInterval, type KeyValueStore, type Ledger, type Logger, type OutflowConfig, type RunSummary } from '@outflow/core';
import { alertWebhook, type AlertPost } from './alert-webhook.js';

/** The ledger's key-value scope of open incidents; a connection name cannot contain ':'. */
const INCIDENTS_SCOPE = ':alerts';
/** How many recent runs are searched for the last success (`noSuccessFor`). */
const RUNS_SEARCHED = 100;
/** The lease of the runner judging `noSuccessFor`; a sync name cannot contain ':'. */
const WATCHER_LEASE = ':alerts-watcher';

/** A rule, named as in outflow.yaml. */
export type AlertRule = 'runFailed' | 'rejectedPct' | 'lagAbove' | 'noSuccessFor';

/** The JSON body POSTed to `alerts.webhook`. */
export interface AlertNotice {
  /** `alert` when an incident opens; `recovery` when it resolves. */
  type: 'alert' | 'recovery';
  /** The incident's id: its alert and its recovery carry the same one, and so does a re-send. */
  incident: string;
  sync: string;
  rule: AlertRule;
  /** What happened, for people (redacted like every message). */
  message: string;
  /** When the incident opened (ISO 8601, UTC). */
  openedAt: string;
  /** For `recovery`: when it resolved. */
  resolvedAt?: string;
}

/** A sync's rules with intervals in milliseconds; an absent rule is off. */
interface Rules {
  runFailed: boolean;
  rejectedPct?: number;
  lagAboveMs?: number;
  noSuccessForMs?: number;
}

interface Incident {
  incident: string;
  openedAt: string;
  message: string;
  /** Whether the receiver acknowledged the alert; if not, it is sent again while the incident lasts. */
  notified: boolean;
}

export interface AlertsOptions {
  config: OutflowConfig;
  /** The syncs this process serves, by name (all of the config's by default); others are not watched. */
  syncs?: readonly string[];
  /** Keeps open incidents, and tells when each sync last succeeded. */
  ledger: Ledger;
  logger: Logger;
  /** The clock `noSuccessFor` is judged by; `Date.now` by default. */
  now?: () => number;
  /**
   * How long this runner stays the one judging `noSuccessFor` after its last
   * {@link Alerts.checkQuiet} (ms; 60 s by default): call it more often than that.
   */
  watcherLeaseMs?: number;
}

/**
 * Watches the alert rules of a config's syncs. The serve process reports what it sees —
 * every finished run, every lag a stream reports — and calls {@link checkQuiet}
 * periodically for `noSuccessFor`. Each call resolves once the notices it caused were sent
 * (or failed: a failure is logged, and an alert not acknowledged is sent again the next
 * time its rule is seen breached), so a caller that must not wait should not await it.
 * Calls may be concurrent; those about one rule of one sync are handled in order.
 */
export class Alerts {
  private readonly rules: Map<string, Rules>;
  private readonly incidents: KeyValueStore;
  private readonly post: AlertPost;
  private readonly now: () => number;
  private readonly startedAt: number;
  /** The latest success seen per sync (ms), beside the ledger's record of it. */
  private readonly succeeded = new Map<string, number>();
  /** Work per (sync, rule), chained so one incident is never decided twice at once. */
  private readonly queues = new Map<string, Promise<void>>();
  private readonly stopping = new AbortController();
  /** This runner, as the owner of {@link WATCHER_LEASE}. */
  private readonly owner = `${hostname()}/${process.pid}/${randomUUID()}`;

  private constructor(
    rules: Map<string, Rules>,
    post: AlertPost,
    private readonly options: AlertsOptions,
  ) {
    this.rules = rules;
    this.post = post;
    this.incidents = options.ledger.kv(INCIDENTS_SCOPE);
    this.now = options.now ?? Date.now;
    this.startedAt = this.now();
  }

  /** The alerts of a loaded config, or undefined when it has no `alerts` section. */
  static from(options: AlertsOptions): Alerts | undefined {
    const alerts = options.config.alerts;
    if (!alerts) return undefined;
    const rules = new Map<string, Rules>();
    for (const sync of options.config.syncs) {
      if (options.syncs && !options.syncs.includes(sync.name)) continue;
      const r = sync.alerts ?? alerts.rules ?? {};
      rules.set(sync.name, {
        runFailed: r.runFailed === true,
        ...(r.rejectedPct === undefined ? {} : { rejectedPct: r.rejectedPct }),
        ...(r.lagAbove === undefined || sync.capture !== 'stream' ? {} : { lagAboveMs: parseInterval(r.lagAbove) }),
        ...(r.noSuccessFor === undefined ? {} : { noSuccessForMs: parseInterval(r.noSuccessFor) }),
      });
    }
    return new Alerts(rules, alertWebhook(alerts.webhook), options);
  }

  /**
   * A run finished. A failed run breaches `runFailed`, one that did not fail resolves it; a
   * run that rejected more than `rejectedPct` of the records it sent breaches that rule, a
   * run that completed within it resolves it; a success (`succeeded` or `partial`) resolves
   * `noSuccessFor`. An aborted run (stopped) tells nothing.
   */
  async runFinished(run: RunSummary): Promise<void> {
    const rules = this.rules.get(run.sync);
    if (!rules || run.status === 'aborted') return;
    const succeeded = run.status !== 'failed';
    const label = `run ${run.runId ?? ''}`.trim();
    const work: Promise<void>[] = [];
    if (rules.runFailed) {
      work.push(
        succeeded
          ? this.resolve(run.sync, 'runFailed')
          : this.breach(run.sync, 'runFailed', `${label} of sync "${run.sync}" failed${run.error ? `: ${run.error.code}: ${run.error.message}` : ''}`),
      );
    }
    if (rules.rejectedPct !== undefined) {
      const sent = run.inserted + run.updated + run.deleted + run.rejected;
      const pct = sent === 0 ? 0 : (run.rejected / sent) * 100;
      if (pct > rules.rejectedPct) {
        const message = `${label} of sync "${run.sync}" rejected ${run.rejected} of ${sent} records (${Number(pct.toFixed(2))}%), more than rejectedPct ${rules.rejectedPct}`;
        work.push(this.breach(run.sync, 'rejectedPct', message));
      } else if (succeeded) {
        work.push(this.resolve(run.sync, 'rejectedPct'));
      }
    }
    if (succeeded) {
      this.succeeded.set(run.sync, this.now());
      if (rules.noSuccessForMs !== undefined) work.push(this.resolve(run.sync, 'noSuccessFor'));
    }
    await Promise.all(work);
  }

  /** A stream sync's lag as its stream reported it: above `lagAbove` breaches, within it resolves. */
  async lag(sync: string, lagMs: number): Promise<void> {
    const limit = this.rules.get(sync)?.lagAboveMs;
    if (limit === undefined) return;
    if (lagMs > limit) await this.breach(sync, 'lagAbove', `sync "${sync}" is ${seconds(lagMs)} behind its source, more than lagAbove ${seconds(limit)}`);
    else await this.resolve(sync, 'lagAbove');
  }

  /**
   * Judges `noSuccessFor` for every sync with the rule: breached when no run succeeded
   * (`succeeded` or `partial`, by any runner sharing the ledger) for longer than it allows,
   * counted from the last success, or from when this process started watching when its
   * recent history has none. Of the runners sharing the ledger, only the one holding the
   * watcher's lease judges it (taking the lease when it is free or expired).
   */
  async checkQuiet(): Promise<void> {
    if (![...this.rules.values()].some((r) => r.noSuccessForMs !== undefined)) return;
    if (!(await this.options.ledger.acquireLease(WATCHER_LEASE, this.owner, this.options.watcherLeaseMs ?? 60_000))) return;
    const work: Promise<void>[] = [];
    for (const [sync, rules] of this.rules) {
      if (rules.noSuccessForMs === undefined) continue;
      const seen = Math.max(this.succeeded.get(sync) ?? 0, await this.lastSuccess(sync));
      const last = seen || this.startedAt;
      if (this.now() - last > rules.noSuccessForMs) {
        const since = seen ? `since ${new Date(seen).toISOString()}` : 'since it started being watched';
        work.push(this.breach(sync, 'noSuccessFor', `no run of sync "${sync}" has succeeded ${since}, for more than noSuccessFor ${seconds(rules.noSuccessForMs)}`));
      }
    }
    await Promise.all(work);
  }

  /** Cancels notices still being sent (they are sent again while their incidents last) and waits for the work in hand. */
  async close(): Promise<void> {
    this.stopping.abort();
    await Promise.all(this.queues.values());
    // Another runner takes the watch over at once rather than after the lease expires.
    await this.options.ledger.releaseLease(WATCHER_LEASE, this.owner).catch(() => undefined);
  }

  private async lastSuccess(sync: string): Promise<number> {
    const runs = await this.options.ledger.listRuns({ sync, limit: RUNS_SEARCHED });
    const run = runs.find((r) => r.status === 'succeeded' || r.status === 'partial');
    return run ? Date.parse(run.finishedAt ?? run.startedAt) : 0;
  }

  /** Opens the incident of (sync, rule) unless open, and alerts until the receiver acknowledges once. */
  private breach(sync: string, rule: AlertRule, message: string): Promise<void> {
    return this.inOrder(sync, rule, async (key) => {
      const stored = await this.incidents.get(key);
      const incident: Incident = stored ? (JSON.parse(stored) as Incident) : { incident: randomUUID(), openedAt: new Date(this.now()).toISOString(), message, notified: false };
      if (incident.notified) return;
      if (!stored) await this.incidents.set(key, JSON.stringify(incident));
      if (await this.send({ type: 'alert', incident: incident.incident, sync, rule, message: incident.message, openedAt: incident.openedAt })) {
        await this.incidents.set(key, JSON.stringify({ ...incident, notified: true }));
      }
    });
  }

  /** Closes the incident of (sync, rule) if open, with a recovery notice when its alert was sent. */
  private resolve(sync: string, rule: AlertRule): Promise<void> {
    return this.inOrder(sync, rule, async (key) => {
      const stored = await this.incidents.get(key);
      if (!stored) return;
      const incident = JSON.parse(stored) as Incident;
      await this.incidents.delete(key);
      if (!incident.notified) return;
      const message = `sync "${sync}" recovered: ${recovered[rule]}`;
      await this.send({ type: 'recovery', incident: incident.incident, sync, rule, message, openedAt: incident.openedAt, resolvedAt: new Date(this.now()).toISOString() });
    });
  }

  private inOrder(sync: string, rule: AlertRule, fn: (key: string) => Promise<void>): Promise<void> {
    const key = JSON.stringify([sync, rule]);
    const next = (this.queues.get(key) ?? Promise.resolve()).then(() => fn(key));
    const settled = next.catch((e: unknown) => this.options.logger.error({ sync, rule, err: describeError(e) }, 'alert bookkeeping failed'));
    this.queues.set(key, settled);
    void settled.then(() => {
      if (this.queues.get(key) === settled) this.queues.delete(key);
    });
    return settled;
  }

  /** Sends a notice; false (logged) when the receiver did not acknowledge it. */
  private async send(notice: AlertNotice): Promise<boolean> {
    try {
      await this.post(notice, this.stopping.signal);
      this.options.logger.info({ sync: notice.sync, rule: notice.rule, incident: notice.incident }, notice.type === 'alert' ? 'alert sent' : 'recovery sent');
      return true;
    } catch (e) {
      this.options.logger.error({ sync: notice.sync, rule: notice.rule, incident: notice.incident, err: describeError(e) }, `${notice.type} not delivered`);
      return false;
    }
  }
}

const recovered: Record<AlertRule, string> = {
  runFailed: 'a run did not fail',
  rejectedPct: 'a run rejected no more than rejectedPct of its records',
  lagAbove: 'its lag is back within lagAbove',
  noSuccessFor: 'a run succeeded',
};

function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(1))}s`;
}
