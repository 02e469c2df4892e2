/** The real snowflake-sdk, promisified, for tests that drive the emulator directly. */
import snowflake from 'snowflake-sdk';

snowflake.configure({ logLevel: 'OFF' as never, disableOCSPChecks: true });

export type Connection = snowflake.Connection;

export interface ConnectOptions {
  accessUrl?: string;
  account: string;
  username: string;
  password?: string;
  privateKey?: string;
  database?: string;
  schema?: string;
  warehouse?: string;
}

export function connect(o: ConnectOptions): Promise<Connection> {
  const conn = snowflake.createConnection({
    accessUrl: o.accessUrl,
    account: o.account,
    username: o.username,
    ...(o.privateKey ? { authenticator: 'SNOWFLAKE_JWT', privateKey: o.privateKey } : { password: o.password ?? '' }),
    ...(o.database ? { database: o.database } : {}),
    ...(o.schema ? { schema: o.schema } : {}),
    ...(o.warehouse ? { warehouse: o.warehouse } : {}),
    sfRetryMaxLoginRetries: 1,
  } as snowflake.ConnectionOptions);
  return new Promise((resolve, reject) => conn.connect((err) => (err ? reject(err) : resolve(conn))));
}

export function exec(conn: Connection, sqlText: string, binds?: unknown[]): Promise<Record<string, unknown>[]> {
  return new Promise((resolve, reject) =>
    conn.execute({
      sqlText,
      ...(binds ? { binds: binds as snowflake.Binds } : {}),
      complete: (err, _stmt, rows) => (err ? reject(err) : resolve((rows ?? []) as Record<string, unknown>[])),
    }),
  );
}

/** Executes and returns the statement too (for getNumUpdatedRows and the like). */
export function execStatement(conn: Connection, sqlText: string, binds?: unknown[]): Promise<{ rows: Record<string, unknown>[]; stmt: snowflake.RowStatement }> {
  return new Promise((resolve, reject) =>
    conn.execute({
      sqlText,
      ...(binds ? { binds: binds as snowflake.Binds } : {}),
      complete: (err, stmt, rows) => (err ? reject(err) : resolve({ rows: (rows ?? []) as Record<string, unknown>[], stmt })),
    }),
  );
}

export function destroy(conn: Connection): Promise<void> {
  return new Promise((resolve) => conn.destroy(() => resolve()));
}
