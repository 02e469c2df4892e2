/**
 * Leases per destination connection, so that a connection's rate budget stays right when
 * several runners share a ledger: each runner keeps its own request budget per connection,
 * so every sync writing through one connection must run in one runner at a time. The runner
 * holding a connection's lease runs any number of its syncs at once, through one budget.
 *
 * A lease is given up by letting it expire, a full lease length after its last use: a rate
 * window (HubSpot's is 10 s) that the last requests here fall in has then passed before
 * another runner starts sending, as long as the lease is longer than the window.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { describeError, isOutflowError, type Ledger, type Logger } from '@outflow/core';

/** A connection's lease in the ledger; sync names cannot contain ':', so none is taken for a sync's. */
export const connectionLease = (connection: string): string => `:to:${connection}`;

interface Held {
  users: number;
  token: number;
  heartbeat: NodeJS.Timeout;
  /** When the last renewal that succeeded was sent (ms, this process's clock). */
  renewedAt: number;
}

export interface ConnectionLeasesOptions {
  ledger(): Ledger;
  ttlMs: number;
  logger: Logger;
  /** The lease of a connection in use here was lost (taken over, or not renewed in time): stop its runs. */
  onLost(connection: string): void;
}

export class ConnectionLeases {
  /** This runner, as the owner of its connection leases (`host/pid/uuid`, as sync leases name theirs). */
  readonly owner = `${hostname()}/${process.pid}/${randomUUID()}`;
  private readonly held = new Map<string, Held>();
  /** Takes in progress, so concurrent users of one connection share one. */
  private readonly taking = new Map<string, Promise<boolean>>();

  constructor(private readonly o: ConnectionLeasesOptions) {}

  /**
   * Holds the connection's lease for one user (a run) until the returned release is called;
   * undefined when another runner holds it. Renewed every third of its length while in use.
   */
  async hold(connection: string): Promise<(() => void) | undefined> {
    if (!this.held.has(connection)) {
      let taking = this.taking.get(connection);
      if (!taking) {
        taking = this.take(connection).finally(() => this.taking.delete(connection));
        this.taking.set(connection, taking);
      }
      if (!(await taking)) return undefined;
    }
    const held = this.held.get(connection);
    if (!held) return undefined;
    held.users++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--held.users === 0) this.idle(connection, held);
    };
  }

  private async take(connection: string): Promise<boolean> {
    const sentAt = Date.now();
    const grant = await this.o.ledger().acquireLease(connectionLease(connection), this.owner, this.o.ttlMs);
    if (!grant) return false;
    const held: Held = { users: 0, token: grant.token, renewedAt: sentAt, heartbeat: setInterval(() => void this.renew(connection, held), Math.max(1, Math.floor(this.o.ttlMs / 3))) };
    held.heartbeat.unref();
    this.held.set(connection, held);
    return true;
  }

  private async renew(connection: string, held: Held): Promise<void> {
    const sentAt = Date.now();
    try {
      await this.o.ledger().renewLease({ sync: connectionLease(connection), owner: this.owner, token: held.token }, this.o.ttlMs);
      held.renewedAt = sentAt;
      return;
    } catch (err) {
      if (!isOutflowError(err, 'OUTFLOW_LEASE_LOST') && Date.now() - held.renewedAt < this.o.ttlMs) {
        this.o.logger.warn({ connection, err: describeError(err) }, 'could not renew the lease of the connection; trying again');
        return;
      }
      this.o.logger.warn({ connection, err: describeError(err) }, 'lost the lease of the connection: its runs here stop');
    }
    this.forget(connection, held);
    if (held.users > 0) this.o.onLost(connection);
  }

  /** No run uses the connection any more: renew once more and let the lease run out from now. */
  private idle(connection: string, held: Held): void {
    this.forget(connection, held);
    this.o.ledger()
      .renewLease({ sync: connectionLease(connection), owner: this.owner, token: held.token }, this.o.ttlMs)
      .catch(() => undefined);
  }

  private forget(connection: string, held: Held): void {
    clearInterval(held.heartbeat);
    if (this.held.get(connection) === held) this.held.delete(connection);
  }
}
