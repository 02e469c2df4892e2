import { join } from 'node:path';
import type { AnyConnector, ConnectorContext, Metrics } from '../contracts.js';
import { OutflowError, describeError } from '../errors.js';
import type { Ledger } from '../ledger/ledger.js';
import type { Logger } from '../logger.js';
import { redact, registerSecret } from '../redact.js';
import { secretPaths } from '../schema.js';
import { ConnectionBudget } from '../delivery/rate-budget.js';
import { folderName, openSandbox, type OpenedSandbox } from './sandbox.js';

/** What the engine needs to open one connection. */
export interface ConnectionSpec {
  connector: AnyConnector;
  /** The validated config (defaults applied, `${env:…}` resolved). */
  config?: Record<string, unknown>;
  /** Start the connector's emulator and point the connection at it. */
  sandbox?: boolean;
  /** The longest wait the system may ask for before a retry (ms); 5 minutes when absent. */
  maxWaitMs?: number;
}

/** An open connection: its connector and the one context every call receives. */
export interface ConnectionHandle {
  connector: AnyConnector;
  ctx: ConnectorContext;
}

interface Opened extends ConnectionHandle {
  budget: ConnectionBudget;
  sandbox?: OpenedSandbox;
}

export interface ConnectionsOptions {
  specs: Readonly<Record<string, ConnectionSpec>>;
  ledger: () => Ledger;
  stateDir: string;
  logger: Logger;
  metrics: Metrics;
  /** Aborted when the engine stops for good: every context's `signal`. */
  signal: AbortSignal;
}

/**
 * The engine's connections: each is opened once (sandbox emulator started, `open` hook
 * called) on first use and closed once when the engine closes. One context per connection,
 * with one request budget shared by every sync that uses it.
 */
export class Connections {
  private readonly opened = new Map<string, Promise<Opened>>();

  constructor(private readonly o: ConnectionsOptions) {}

  names(): string[] {
    return Object.keys(this.o.specs);
  }

  get(name: string): Promise<ConnectionHandle> {
    return this.open(name);
  }

  /** The request budget of a connection (opening it if needed). */
  async budget(name: string): Promise<ConnectionBudget> {
    return (await this.open(name)).budget;
  }

  private open(name: string): Promise<Opened> {
    let p = this.opened.get(name);
    if (!p) {
      p = this.openNow(name);
      this.opened.set(name, p);
      // A failed open is not cached: the next command may try again.
      p.catch(() => this.opened.delete(name));
    }
    return p;
  }

  private async openNow(name: string): Promise<Opened> {
    const spec = this.o.specs[name];
    if (!spec) {
      throw new OutflowError('OUTFLOW_CONFIG_INVALID', `no connection named "${name}" (connections: ${this.names().join(', ') || 'none'})`);
    }
    const { connector } = spec;
    let config: Record<string, unknown> = { ...(spec.config ?? {}) };
    let sandbox: OpenedSandbox | undefined;
    if (spec.sandbox) {
      // The emulator of a running `outflow sandbox` when there is one, else one of its own.
      sandbox = await openSandbox({ connection: name, connector, stateDir: this.o.stateDir });
      config = { ...config, ...sandbox.config };
      for (const path of secretPaths(connector.config)) registerSecret(valueAt(config, path));
      if (sandbox.sharedBy === undefined) this.o.logger.info({ connection: name, url: sandbox.url }, `sandbox: ${connector.name} emulator started`);
      else this.o.logger.info({ connection: name, url: sandbox.url, pid: sandbox.sharedBy }, `sandbox: using the ${connector.name} emulator of \`outflow sandbox\``);
    }
    const metrics = labelled(this.o.metrics, name);
    const budget = new MeteredBudget(metrics, this.o.signal, spec.maxWaitMs);
    const ctx: ConnectorContext = {
      connection: name,
      config: Object.freeze(config),
      logger: this.o.logger.child({ connection: name }),
      signal: this.o.signal,
      rateBudget: budget,
      metrics,
      kv: this.o.ledger().kv(name),
      stateDir: join(this.o.stateDir, 'connections', folderName(name)),
    };
    if (connector.open) {
      try {
        await connector.open(ctx as never);
      } catch (err) {
        await sandbox?.stop();
        throw new OutflowError('OUTFLOW_CHECK_FAILED', `connection "${name}" (${connector.name}) could not be opened: ${redact(describeError(err))}`, {
          cause: err,
        });
      }
    }
    return { connector, ctx, budget, ...(sandbox ? { sandbox } : {}) };
  }

  /** Closes every opened connection (its `close` hook, then its sandbox emulator). */
  async close(): Promise<void> {
    const all = [...this.opened.values()];
    this.opened.clear();
    for (const p of all) {
      const c = await p.catch(() => undefined);
      if (!c) continue;
      if (c.connector.close) {
        try {
          await c.connector.close(c.ctx as never);
        } catch (err) {
          this.o.logger.warn({ connection: c.ctx.connection, err: redact(describeError(err)) }, 'closing the connection failed');
        }
      }
      await c.sandbox?.stop();
    }
  }
}

/**
 * A connection's request budget that reports its use to the engine's metrics: the counter
 * `rate_budget_requests` for every request started through it, and `rate_limited` each time
 * the destination makes it pause (a 429's Retry-After, or a refused batch that carried one;
 * a pause asked for while one is still running counts once, so one 429 seen by both the
 * connector and the engine is counted once).
 */
class MeteredBudget extends ConnectionBudget {
  private pausedUntil = 0;

  constructor(
    private readonly metrics: Metrics,
    signal: AbortSignal,
    maxWaitMs: number | undefined,
  ) {
    super([], signal, maxWaitMs);
  }

  override async take(): Promise<boolean> {
    const taken = await super.take();
    if (taken) this.metrics.count('rate_budget_requests');
    return taken;
  }

  override async hold(stop?: AbortSignal): Promise<(() => void) | null> {
    const release = await super.hold(stop);
    if (release) this.metrics.count('rate_budget_requests');
    return release;
  }

  override request<T>(send: () => Promise<T>): Promise<T> {
    return super.request(() => {
      this.metrics.count('rate_budget_requests');
      return send();
    });
  }

  override pause(ms: number): void {
    const now = Date.now();
    if (now >= this.pausedUntil) this.metrics.count('rate_limited');
    this.pausedUntil = Math.max(this.pausedUntil, now + Math.min(ms, this.maxWaitMs));
    super.pause(ms);
  }
}

/** Metrics labelled with the connection's name. */
function labelled(metrics: Metrics, connection: string): Metrics {
  return {
    gauge: (n, v, labels) => metrics.gauge(n, v, { connection, ...labels }),
    count: (n, d, labels) => metrics.count(n, d, { connection, ...labels }),
  };
}

function valueAt(obj: Record<string, unknown>, path: string): unknown {
  let cur: unknown = obj;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}
