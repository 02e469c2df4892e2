/**
 * The real @databricks/sql client pointed at an emulator, for the emulator's own tests:
 * HTTPS trusting the emulator's certificate, telemetry off, the SDK's logging quiet.
 */
import { DBSQLClient, DBSQLLogger, LogLevel } from '@databricks/sql';
import type { DatabricksEmulator } from '@outflow/connector-databricks/emulator';

export type Session = Awaited<ReturnType<DBSQLClient['openSession']>>;

export async function connect(emu: DatabricksEmulator, token = emu.token): Promise<DBSQLClient> {
  const client = new DBSQLClient({ logger: new DBSQLLogger({ level: LogLevel.error }) });
  await client.connect({ host: emu.host, port: emu.port, path: emu.path, token, customCaCert: emu.caCert, telemetryEnabled: false } as Parameters<DBSQLClient['connect']>[0]);
  return client;
}

/** Runs a statement through the SDK and reads every row. */
export async function query(session: Session, sql: string, options: { namedParameters?: Record<string, unknown> } = {}): Promise<Record<string, unknown>[]> {
  const op = await session.executeStatement(sql, options as never);
  try {
    return (await op.fetchAll()) as Record<string, unknown>[];
  } finally {
    await op.close();
  }
}

/** What a failed call threw: its message and, for a failed statement, the SQLSTATE. */
export async function failure(p: Promise<unknown>): Promise<{ message: string; sqlState?: string; statusCode?: number }> {
  try {
    await p;
  } catch (err) {
    const e = err as { message: string; response?: { sqlState?: string }; statusCode?: number };
    return { message: e.message, ...(e.response?.sqlState ? { sqlState: e.response.sqlState } : {}), ...(e.statusCode ? { statusCode: e.statusCode } : {}) };
  }
  throw new Error('expected the call to fail');
}
