/**
 * The TCLIService handlers: sessions, operations (statements and metadata calls run
 * asynchronously, polled with GetOperationStatus), result metadata and FETCH_NEXT paging.
 * A statement's failure is the operation's: ERROR_STATE with the message and SQLSTATE, as
 * a warehouse reports it; a call on an unknown or closed handle answers ERROR_STATUS.
 * Each handler takes exactly its request (the Processor treats a one-argument handler as
 * promise-returning).
 */
import { randomUUID } from 'node:crypto';
import Int64 from 'node-int64';
// The generated module is CommonJS whose enums Node cannot see as named exports.
import thriftTypes from '@databricks/sql/thrift/TCLIService_types.js';
import {
  type TCancelOperationReq,
  type TOperationState as OperationState,
  type TOperationType as OperationType,
  type TCloseOperationReq,
  type TCloseSessionReq,
  type TExecuteStatementReq,
  type TFetchResultsReq,
  type TGetCatalogsReq,
  type TGetColumnsReq,
  type TGetOperationStatusReq,
  type TGetOperationStatusResp,
  type TGetPrimaryKeysReq,
  type TGetResultSetMetadataReq,
  type TGetResultSetMetadataResp,
  type TGetSchemasReq,
  type TGetTablesReq,
  type TOpenSessionReq,
  type TOperationHandle,
  type TSparkGetDirectResults,
  type TStatus,
} from '@databricks/sql/thrift/TCLIService_types.js';

const { TFetchOrientation, TOperationState, TOperationType, TProtocolVersion, TSparkRowSetType, TStatusCode } = thriftTypes;
import { getCatalogsSql, getColumnsSql, getPrimaryKeysSql, getSchemasSql, getTablesSql } from './catalog-views.js';
import type { Engine, Namespace, Result } from './engine.js';
import { DatabricksSqlError, fromDuckDb } from './errors.js';
import { rowSet, tableSchema } from './rowset.js';

/** The newest protocol the emulator speaks; a session runs at the older of this and the client's. */
const SERVER_PROTOCOL = TProtocolVersion.SPARK_CLI_SERVICE_PROTOCOL_V8;
/** How long ExecuteStatement waits for a statement before answering with its handle alone. */
const DIRECT_RESULTS_WAIT_MS = 2_000;
/** Rows a FetchResults answers when the client asks for more (or none). */
const MAX_FETCH_ROWS = 100_000;

/** What the server logs of each statement a client executes. */
export interface StatementLogEntry {
  statement: string;
  /** The session's id (a UUID). */
  session: string;
  /** The error class or message of a statement that failed; absent when it succeeded. */
  error?: string;
}

interface Session {
  id: string;
  ns: Namespace;
}

interface Operation {
  handle: TOperationHandle;
  /** The id of the session that started it. */
  session: string;
  state: OperationState;
  result?: Result;
  error?: DatabricksSqlError;
  /** The next row FETCH_NEXT answers. */
  cursor: number;
  done: Promise<void>;
}

const ok = (): TStatus => ({ statusCode: TStatusCode.SUCCESS_STATUS }) as TStatus;
const failed = (message: string, sqlState?: string): TStatus =>
  ({ statusCode: TStatusCode.ERROR_STATUS, errorMessage: message, displayMessage: message, ...(sqlState ? { sqlState } : {}) }) as TStatus;
const invalidHandle = (kind: 'SessionHandle' | 'OperationHandle', id: string): TStatus =>
  ({ statusCode: TStatusCode.INVALID_HANDLE_STATUS, errorMessage: `Invalid ${kind}: ${id}`, displayMessage: `Invalid ${kind}: ${id}` }) as TStatus;

/** A fresh handle identifier: 16 bytes of a v4 UUID, and a secret. */
function newIdentifier(): { guid: Buffer; secret: Buffer } {
  return { guid: Buffer.from(randomUUID().replace(/-/g, ''), 'hex'), secret: Buffer.from(randomUUID().replace(/-/g, ''), 'hex') };
}

/** An operation state's name (the generated enum has no reverse mapping). */
const stateName = (state: OperationState): string => Object.entries(TOperationState).find(([, v]) => v === state)?.[0] ?? String(state);

const idOf = (guid: Buffer | undefined): string => {
  const h = (guid ?? Buffer.alloc(0)).toString('hex');
  return h.length === 32 ? `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}` : h;
};

const rowsAsked = (n: Int64 | number | undefined | null): number => {
  const v = n === undefined || n === null ? MAX_FETCH_ROWS : typeof n === 'number' ? n : n.toNumber();
  return v > 0 && Number.isFinite(v) ? Math.min(v, MAX_FETCH_ROWS) : MAX_FETCH_ROWS;
};

export class CliService {
  private readonly sessions = new Map<string, Session>();
  private readonly operations = new Map<string, Operation>();

  constructor(
    private readonly engine: Engine,
    private readonly defaults: Namespace,
    private readonly log: StatementLogEntry[],
  ) {}

  get sessionCount(): number {
    return this.sessions.size;
  }

  /** The handler object for the Thrift Processor. */
  handlers(): Record<string, (req: never) => Promise<unknown>> {
    const handlers: Record<string, (req: never) => Promise<unknown>> = {
      OpenSession: (req: TOpenSessionReq) => this.openSession(req),
      CloseSession: async (req: TCloseSessionReq) => {
        const id = idOf(req.sessionHandle?.sessionId?.guid);
        if (!this.sessions.delete(id)) return { status: invalidHandle('SessionHandle', id) };
        for (const [key, op] of this.operations) if (op.session === id) this.operations.delete(key);
        return { status: ok() };
      },
      ExecuteStatement: (req: TExecuteStatementReq) =>
        this.start(req.sessionHandle?.sessionId?.guid, TOperationType.EXECUTE_STATEMENT, req.getDirectResults, req.runAsync !== false, (s) => {
          const entry: StatementLogEntry = { statement: req.statement, session: s.id };
          this.log.push(entry);
          return this.engine.execute(req.statement, s.ns, req.parameters).catch((err: unknown) => {
            const e = fromDuckDb(err);
            entry.error = e.errorClass || e.message;
            throw e;
          });
        }),
      GetCatalogs: (req: TGetCatalogsReq) => this.start(req.sessionHandle?.sessionId?.guid, TOperationType.GET_CATALOGS, req.getDirectResults, true, () => this.engine.metadata(getCatalogsSql)),
      GetSchemas: (req: TGetSchemasReq) =>
        this.start(req.sessionHandle?.sessionId?.guid, TOperationType.GET_SCHEMAS, req.getDirectResults, true, () => this.engine.metadata(() => getSchemasSql(req.catalogName, req.schemaName))),
      GetTables: (req: TGetTablesReq) =>
        this.start(req.sessionHandle?.sessionId?.guid, TOperationType.GET_TABLES, req.getDirectResults, true, () =>
          this.engine.metadata(() => getTablesSql(req.catalogName, req.schemaName, req.tableName, req.tableTypes)),
        ),
      GetColumns: (req: TGetColumnsReq) =>
        this.start(req.sessionHandle?.sessionId?.guid, TOperationType.GET_COLUMNS, req.getDirectResults, true, () =>
          this.engine.metadata(() => getColumnsSql(req.catalogName, req.schemaName, req.tableName, req.columnName)),
        ),
      GetPrimaryKeys: (req: TGetPrimaryKeysReq) =>
        this.start(req.sessionHandle?.sessionId?.guid, TOperationType.UNKNOWN, req.getDirectResults, true, (s) =>
          this.engine.metadata((catalogs) => getPrimaryKeysSql(catalogs, req.catalogName ?? s.ns.catalog, req.schemaName ?? s.ns.schema, req.tableName ?? '')),
        ),
      GetOperationStatus: async (req: TGetOperationStatusReq) => {
        const op = this.operation(req.operationHandle);
        return op === undefined ? { status: invalidHandle('OperationHandle', idOf(req.operationHandle?.operationId?.guid)) } : this.status(op);
      },
      GetResultSetMetadata: async (req: TGetResultSetMetadataReq) => {
        const op = this.operation(req.operationHandle);
        if (op === undefined) return { status: invalidHandle('OperationHandle', idOf(req.operationHandle?.operationId?.guid)) };
        return this.metadata(op);
      },
      FetchResults: async (req: TFetchResultsReq) => {
        const op = this.operation(req.operationHandle);
        if (op === undefined) return { status: invalidHandle('OperationHandle', idOf(req.operationHandle?.operationId?.guid)) };
        if (req.fetchType === 1) return { status: ok(), hasMoreRows: false, results: { startRowOffset: new Int64(0), rows: [], columns: [] } };
        if (op.error !== undefined) return { status: failed(op.error.message, op.error.sqlState) };
        if (op.result === undefined) return { status: failed(`The operation is ${stateName(op.state)}: its results cannot be fetched.`, 'HY010') };
        if (req.orientation === TFetchOrientation.FETCH_FIRST) op.cursor = 0;
        return this.fetch(op, rowsAsked(req.maxRows));
      },
      CancelOperation: async (req: TCancelOperationReq) => {
        const op = this.operation(req.operationHandle);
        if (op === undefined) return { status: invalidHandle('OperationHandle', idOf(req.operationHandle?.operationId?.guid)) };
        if (op.state === TOperationState.RUNNING_STATE || op.state === TOperationState.PENDING_STATE) op.state = TOperationState.CANCELED_STATE;
        return { status: ok() };
      },
      CloseOperation: async (req: TCloseOperationReq) => {
        const id = idOf(req.operationHandle?.operationId?.guid);
        if (!this.operations.delete(id)) return { status: invalidHandle('OperationHandle', id) };
        return { status: ok() };
      },
      GetInfo: async (_req: unknown) => ({ status: ok(), infoValue: { stringValue: 'Spark SQL' } }),
    };
    // A call without a handler here is answered in TCLIService's own error shape.
    return new Proxy(handlers, {
      get: (target, method: string) => target[method] ?? (async (_req: unknown) => ({ status: failed(`${method} is not supported by the emulator.`, '0A000') })),
    });
  }

  private async openSession(req: TOpenSessionReq): Promise<unknown> {
    const asked = req.client_protocol_i64 ? req.client_protocol_i64.toNumber() : (req.client_protocol ?? SERVER_PROTOCOL);
    if (asked < TProtocolVersion.SPARK_CLI_SERVICE_PROTOCOL_V1) {
      return { status: failed(`Client protocol ${asked} is not supported: Databricks needs SPARK_CLI_SERVICE_PROTOCOL_V1 or later.`), serverProtocolVersion: SERVER_PROTOCOL };
    }
    const ns: Namespace = {
      catalog: (req.initialNamespace?.catalogName ?? this.defaults.catalog).toLowerCase(),
      schema: (req.initialNamespace?.schemaName ?? this.defaults.schema).toLowerCase(),
    };
    try {
      await this.engine.checkNamespace(ns);
    } catch (err) {
      const e = fromDuckDb(err);
      return { status: failed(e.message, e.sqlState), serverProtocolVersion: SERVER_PROTOCOL };
    }
    const identifier = newIdentifier();
    const id = idOf(identifier.guid);
    this.sessions.set(id, { id, ns });
    return {
      status: ok(),
      serverProtocolVersion: Math.min(asked, SERVER_PROTOCOL),
      sessionHandle: { sessionId: identifier },
      configuration: {},
      initialNamespace: { catalogName: ns.catalog, schemaName: ns.schema },
      canUseMultipleCatalogs: true,
    };
  }

  /**
   * Starts an operation in a session. A synchronous one is answered when it is done; an
   * asynchronous one after a short wait, with direct results when it finished by then
   * and the client asked for them (the operation closed too when every row fits).
   */
  private async start(
    guid: Buffer | undefined,
    type: OperationType,
    direct: TSparkGetDirectResults | undefined | null,
    runAsync: boolean,
    run: (s: Session) => Promise<Result>,
  ): Promise<unknown> {
    const session = this.sessions.get(idOf(guid));
    if (session === undefined) return { status: invalidHandle('SessionHandle', idOf(guid)) };
    const identifier = newIdentifier();
    const handle = { operationId: identifier, operationType: type, hasResultSet: true } as TOperationHandle;
    const op: Operation = { handle, state: TOperationState.RUNNING_STATE, cursor: 0, done: Promise.resolve(), session: session.id };
    op.done = run(session).then(
      (result) => {
        if (op.state === TOperationState.RUNNING_STATE) {
          op.result = result;
          op.state = TOperationState.FINISHED_STATE;
        }
      },
      (err: unknown) => {
        if (op.state === TOperationState.RUNNING_STATE) {
          op.error = fromDuckDb(err);
          op.state = TOperationState.ERROR_STATE;
        }
      },
    );
    const id = idOf(identifier.guid);
    this.operations.set(id, op);
    let timer: NodeJS.Timeout | undefined;
    await (runAsync ? Promise.race([op.done, new Promise<void>((resolve) => (timer = setTimeout(resolve, DIRECT_RESULTS_WAIT_MS)))]) : op.done);
    clearTimeout(timer);
    const answer: Record<string, unknown> = { status: ok(), operationHandle: handle };
    if (direct !== undefined && direct !== null && op.state !== TOperationState.RUNNING_STATE) {
      // Rows go with the answer when there are columns (DDL has none); a finished result
      // that fits is closed in the same answer, a failed operation stays open for its status.
      const fetched = op.result !== undefined && op.result.names.length > 0 ? this.fetch(op, rowsAsked(direct.maxRows)) : undefined;
      const closes = op.result !== undefined && !fetched?.hasMoreRows;
      if (closes) this.operations.delete(id);
      answer['directResults'] = {
        operationStatus: this.status(op),
        ...(op.result === undefined ? {} : { resultSetMetadata: this.metadata(op) }),
        ...(fetched === undefined ? {} : { resultSet: fetched }),
        ...(closes ? { closeOperation: { status: ok() } } : {}),
      };
    }
    return answer;
  }

  private operation(handle: TOperationHandle | undefined | null): Operation | undefined {
    return this.operations.get(idOf(handle?.operationId?.guid));
  }

  private status(op: Operation): TGetOperationStatusResp {
    const error = op.error;
    return {
      status: ok(),
      operationState: op.state,
      // A failed operation reports its error, not whether it has rows: the client then
      // raises the error (with its SQLSTATE) when it waits for the result.
      ...(error === undefined ? { hasResultSet: op.result !== undefined && op.result.names.length > 0 } : { sqlState: error.sqlState, errorMessage: error.message, displayMessage: error.message }),
    } as TGetOperationStatusResp;
  }

  private metadata(op: Operation): TGetResultSetMetadataResp {
    if (op.result === undefined) {
      return { status: failed(op.error?.message ?? `The operation is ${stateName(op.state)}: it has no result set.`, op.error?.sqlState) } as TGetResultSetMetadataResp;
    }
    return { status: ok(), schema: tableSchema(op.result), resultFormat: TSparkRowSetType.COLUMN_BASED_SET } as TGetResultSetMetadataResp;
  }

  private fetch(op: Operation, maxRows: number): { status: TStatus; hasMoreRows: boolean; results: unknown } {
    const result = op.result!;
    const from = Math.min(op.cursor, result.rowCount);
    const to = Math.min(from + maxRows, result.rowCount);
    op.cursor = to;
    return { status: ok(), hasMoreRows: to < result.rowCount, results: rowSet(result, from, to) };
  }
}
