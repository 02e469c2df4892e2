import type { ConnectorContext } from './contracts.js';

/** One value per connection: made on first use, kept for the connection's life. */
export interface PerConnection<C, T> {
  /** The connection's value, made from its context the first time. */
  of(ctx: ConnectorContext<C>): T;
  /**
   * Forgets the connection's value (in `close`), so a connection opened again starts afresh;
   * answers the value forgotten, if one was made, for the caller to release.
   */
  drop(ctx: ConnectorContext<C>): T | undefined;
}

/**
 * What a connector keeps per connection — an SDK client, a session with its caches — keyed
 * by the connection's context, which lives as long as the connection (and is frozen to the
 * connector). Held weakly: a context no longer referenced takes its value with it.
 */
export function perConnection<C, T>(create: (ctx: ConnectorContext<C>) => T): PerConnection<C, T> {
  const values = new WeakMap<object, T>();
  return {
    of(ctx) {
      let value = values.get(ctx);
      if (value === undefined) values.set(ctx, (value = create(ctx)));
      return value;
    },
    drop(ctx) {
      const value = values.get(ctx);
      values.delete(ctx);
      return value;
    },
  };
}
