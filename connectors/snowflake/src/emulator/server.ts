import { createHash, createPublicKey, randomBytes, randomUUID, verify, type KeyObject } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { gzipSync } from 'node:zlib';
import {
  closeServer,
  createEmulatorServer,
  FaultInjector,
  listenOnLoopback,
  readJsonBody,
  resetConnection,
  Router,
  sendJson,
  sendText,
  type KitFaults,
} from '@outflow/core/emulator-kit';
import { Engine, SnowflakeError, type Bind, type EngineSession, type QueryResult } from './engine.js';

export interface ServerOptions {
  port?: number | undefined;
  account: string;
  database: string;
  schema: string;
  dataDir?: string | undefined;
  /** Rows sent inline with a query response; the rest go in chunks. */
  inlineRows: number;
  /** Rows per downloadable chunk. */
  chunkRows: number;
  /** How long a query may run before the response says "in progress" and the driver polls. */
  longQueryMs: number;
  /** Latency applies to every request; the other faults to query requests only. */
  faults: KitFaults;
}

interface User {
  password?: string | undefined;
  publicKey?: KeyObject | undefined;
}

interface Session {
  id: number;
  token: string;
  masterToken: string;
  expired: boolean;
  engine: EngineSession;
}

interface Running {
  queryId: string;
  session: Session;
  done: Promise<Record<string, unknown>>;
}

const PARAMETERS = [
  { name: 'TIMEZONE', value: 'UTC' },
  { name: 'TIMESTAMP_OUTPUT_FORMAT', value: 'YYYY-MM-DD HH24:MI:SS.FF3 TZHTZM' },
  { name: 'TIMESTAMP_NTZ_OUTPUT_FORMAT', value: 'YYYY-MM-DD HH24:MI:SS.FF3' },
  { name: 'TIMESTAMP_LTZ_OUTPUT_FORMAT', value: '' },
  { name: 'TIMESTAMP_TZ_OUTPUT_FORMAT', value: '' },
  { name: 'DATE_OUTPUT_FORMAT', value: 'YYYY-MM-DD' },
  { name: 'TIME_OUTPUT_FORMAT', value: 'HH24:MI:SS' },
  { name: 'BINARY_OUTPUT_FORMAT', value: 'HEX' },
  { name: 'CLIENT_RESULT_CHUNK_SIZE', value: 160 },
  { name: 'CLIENT_SESSION_KEEP_ALIVE', value: false },
  { name: 'CLIENT_SESSION_KEEP_ALIVE_HEARTBEAT_FREQUENCY', value: 3600 },
];

/** What a route handler gets: the request, its parsed JSON body and a way to answer. */
interface Call {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  params: Record<string, string>;
  body: Record<string, unknown>;
  send(body: unknown, status?: number): void;
}

type Handler = (call: Call) => Promise<void> | void;

/** Query requests carry binds; bulk inserts make them large, but not this large. */
const MAX_BODY_BYTES = 64 * 1024 * 1024;

const ok = (data: unknown) => ({ data, code: null, message: null, success: true });
const fail = (code: string, message: string, data: Record<string, unknown> = {}) => ({ data, code, message, success: false });

function fingerprint(key: KeyObject): string {
  return 'SHA256:' + createHash('sha256').update(key.export({ format: 'der', type: 'spki' })).digest('base64');
}

function decodeSegment(s: string): Record<string, unknown> | null {
  try {
    return JSON.parse(Buffer.from(s, 'base64url').toString('utf8')) as Record<string, unknown>;
  } catch {
    return null;
  }
}

/** The HTTP front of the emulator: snowflake-sdk's login, query, chunk, renew and session endpoints. */
export class EmulatorServer {
  readonly engine: Engine;
  private readonly server: Server;
  private readonly faults: FaultInjector;
  private readonly routes: Router<Handler>;
  private readonly users = new Map<string, User>();
  private readonly sessions = new Map<string, Session>();
  private readonly running = new Map<string, Running>();
  private readonly chunks = new Map<string, string[]>();
  private readonly chunkOrder: string[] = [];
  private nextSession = 1;
  private base = '';
  /** Requests seen, by path (tests check that heartbeats, telemetry and deletes arrive). */
  readonly requests: { method: string; path: string }[] = [];

  private constructor(
    engine: Engine,
    private readonly options: ServerOptions,
  ) {
    this.engine = engine;
    this.faults = new FaultInjector(options.faults);
    this.routes = this.createRoutes();
    this.server = createEmulatorServer(
      (req, res) => this.handle(req, res),
      (err, _req, res) => sendJson(res, 500, fail('390000', err instanceof Error ? err.message : String(err))),
    );
    this.server.keepAliveTimeout = 1000;
  }

  static async start(options: ServerOptions): Promise<EmulatorServer> {
    const engine = await Engine.create({ dataDir: options.dataDir, database: options.database, schema: options.schema });
    const s = new EmulatorServer(engine, options);
    s.base = `http://127.0.0.1:${await listenOnLoopback(s.server, options.port, 'snowflake')}`;
    return s;
  }

  get url(): string {
    return this.base;
  }

  addUser(name: string, user: { password?: string; publicKey?: string }): void {
    this.users.set(name.toUpperCase(), {
      password: user.password,
      publicKey: user.publicKey ? createPublicKey(user.publicKey) : undefined,
    });
  }

  /** Makes every current session token expired, so the next request must renew it. */
  expireSessions(): void {
    for (const s of this.sessions.values()) s.expired = true;
  }

  get sessionCount(): number {
    return new Set([...this.sessions.values()].map((s) => s.id)).size;
  }

  async stop(): Promise<void> {
    await closeServer(this.server);
    for (const s of new Set(this.sessions.values())) await this.engine.closeSession(s.engine).catch(() => undefined);
    this.sessions.clear();
    await this.engine.close();
  }

  private createRoutes(): Router<Handler> {
    const refuse = (method: string, path: string) => fail('390400', `the Outflow emulator does not serve ${method} ${path}`);
    const authed =
      (handler: (call: Call, session: Session) => Promise<void> | void): Handler =>
      (call) => {
        const session = this.authenticate(call.req);
        return 'code' in session ? call.send(session) : handler(call, session);
      };
    return new Router<Handler>({ notFound: refuse, methodNotAllowed: refuse })
      .on('GET', '/outflow-chunks/:queryId/:n', ({ req, res, params }) => this.chunk(params['queryId']!, Number(params['n']), req, res))
      .on('POST', '/session/v1/login-request', async ({ url, body, send }) => send(await this.login(url, body)))
      .on('POST', '/session/token-request', ({ req, body, send }) => send(this.renew(req, body)))
      .on('POST', '/telemetry/send', ({ send }) => send(ok(null)))
      .on('POST', '/session/heartbeat', authed(({ send }) => send(ok(null))))
      .on(
        'POST',
        '/session',
        authed(async ({ url, send }, session) => {
          if (url.searchParams.get('delete') !== 'true') return send(refuse('POST', url.pathname), 404);
          for (const [token, s] of this.sessions) if (s.id === session.id) this.sessions.delete(token);
          await this.engine.closeSession(session.engine);
          send(ok(null));
        }),
      )
      .on(
        'POST',
        '/queries/v1/query-request',
        authed(async ({ req, body, send }, session) => {
          switch (this.faults.decide()?.kind) {
            case 'reset':
              return resetConnection(req);
            case 'throttled':
              return send({ message: 'Too Many Requests' }, 429);
            case 'unavailable':
            case 'error':
              return send({ message: 'Service Unavailable' }, 503);
          }
          send(await this.query(session, body));
        }),
      )
      .on('POST', '/queries/v1/abort-request', authed(({ send }) => send(ok(null))))
      .on('GET', '/queries/:queryId/result', authed(async ({ params, send }, session) => send(await this.poll(session, params['queryId']!))));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.base);
    this.requests.push({ method: req.method ?? 'GET', path: url.pathname });
    const send = (body: unknown, status = 200) => sendJson(res, status, body);
    const body = await readJsonBody(req, res, MAX_BODY_BYTES);
    if (!body.ok) return send(fail('390000', body.message), body.status);
    await this.faults.delay();
    const route = this.routes.match(req.method ?? 'GET', req.url ?? '/');
    if ('status' in route) return sendJson(res, route.status, route.body, route.headers);
    // A handler that throws is answered 500 by the server's failure hook.
    await route.handler({ req, res, url, params: route.params, body: (body.value ?? {}) as Record<string, unknown>, send });
  }

  private async login(url: URL, body: Record<string, unknown>) {
    const data = (body['data'] ?? {}) as Record<string, unknown>;
    const account = String(data['ACCOUNT_NAME'] ?? '');
    const userName = String(data['LOGIN_NAME'] ?? '').toUpperCase();
    if (account.toUpperCase() !== this.options.account.toUpperCase()) {
      return fail('390201', `The requested account ${account} does not exist or is not authorized.`);
    }
    const user = this.users.get(userName);
    const authenticator = String(data['AUTHENTICATOR'] ?? 'SNOWFLAKE').toUpperCase();
    if (authenticator === 'SNOWFLAKE_JWT') {
      if (!user?.publicKey || !this.verifyJwt(String(data['TOKEN'] ?? ''), account, userName, user.publicKey)) {
        return fail('390144', 'JWT token is invalid.');
      }
    } else if (authenticator === 'SNOWFLAKE') {
      if (!user?.password || user.password !== data['PASSWORD']) return fail('390100', 'Incorrect username or password was specified.');
    } else {
      return fail('390190', `The authenticator ${authenticator} is unsupported in the Outflow emulator.`);
    }
    const engine = await this.engine.openSession({
      user: userName,
      database: url.searchParams.get('databaseName') ?? undefined,
      schema: url.searchParams.get('schemaName') ?? undefined,
      warehouse: url.searchParams.get('warehouse') ?? undefined,
      role: url.searchParams.get('roleName') ?? undefined,
    });
    const session: Session = { id: this.nextSession++, token: randomBytes(24).toString('hex'), masterToken: randomBytes(24).toString('hex'), expired: false, engine };
    this.sessions.set(session.token, session);
    return ok({
      token: session.token,
      masterToken: session.masterToken,
      validityInSeconds: 3600,
      masterValidityInSeconds: 14_400,
      sessionId: session.id,
      parameters: PARAMETERS,
      sessionInfo: {
        databaseName: engine.database,
        schemaName: engine.schema,
        warehouseName: engine.warehouse,
        roleName: engine.role,
      },
      idToken: null,
      mfaToken: null,
    });
  }

  private verifyJwt(token: string, account: string, user: string, key: KeyObject): boolean {
    const [h, p, sig] = token.split('.');
    if (!h || !p || !sig) return false;
    const header = decodeSegment(h);
    const payload = decodeSegment(p);
    if (header?.['alg'] !== 'RS256' || !payload) return false;
    const valid = verify('RSA-SHA256', Buffer.from(`${h}.${p}`), key, Buffer.from(sig, 'base64url'));
    if (!valid) return false;
    const subject = `${account.toUpperCase()}.${user}`;
    if (payload['sub'] !== subject || payload['iss'] !== `${subject}.${fingerprint(key)}`) return false;
    const exp = Number(payload['exp']);
    const expMs = exp > 1e12 ? exp : exp * 1000;
    return Number.isFinite(expMs) && expMs > Date.now();
  }

  private tokenOf(req: IncomingMessage): string | undefined {
    const m = /Snowflake Token="([^"]+)"/.exec(req.headers['authorization'] ?? '');
    return m?.[1];
  }

  private authenticate(req: IncomingMessage): Session | ReturnType<typeof fail> {
    const token = this.tokenOf(req);
    const session = token ? this.sessions.get(token) : undefined;
    if (!session) return fail('390104', 'Session token is invalid. Please login again.');
    if (session.expired) return fail('390112', 'Your session has expired. Please login again.', { nextAction: 'RENEW_SESSION' });
    return session;
  }

  private renew(req: IncomingMessage, body: Record<string, unknown>) {
    const master = this.tokenOf(req);
    const old = String(body['oldSessionToken'] ?? '');
    const session = this.sessions.get(old);
    if (!session || session.masterToken !== master) return fail('390114', 'Authentication token has expired.  The user must authenticate again.');
    this.sessions.delete(old);
    session.token = randomBytes(24).toString('hex');
    session.expired = false;
    this.sessions.set(session.token, session);
    return ok({ sessionToken: session.token, validityInSecondsST: 3600, masterToken: session.masterToken, validityInSecondsMT: 14_400 });
  }

  private async query(session: Session, body: Record<string, unknown>) {
    const sqlText = String(body['sqlText'] ?? '');
    const binds = (body['bindings'] ?? undefined) as Record<string, Bind> | undefined;
    const queryId = randomUUID();
    const done = this.engine.execute(session.engine, sqlText, binds).then(
      (r) => this.success(queryId, session, r),
      (err: unknown) => {
        const e = err instanceof SnowflakeError ? err : new SnowflakeError('000603', 'XX000', `internal error in the Outflow emulator: ${err instanceof Error ? err.message : String(err)}`);
        return fail(e.code, e.message, { sqlState: e.sqlState, queryId, errorCode: e.code, age: 0, type: 'COMPILATION', line: -1, pos: -1, internalError: false });
      },
    );
    const running: Running = { queryId, session, done };
    return this.wait(running);
  }

  private async wait(running: Running) {
    let timer: NodeJS.Timeout | undefined;
    const pending = new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), this.options.longQueryMs);
    });
    const result = await Promise.race([running.done, pending]);
    clearTimeout(timer);
    if (result !== null) {
      this.running.delete(running.queryId);
      return result;
    }
    this.running.set(running.queryId, running);
    return { data: { queryId: running.queryId, getResultUrl: `/queries/${running.queryId}/result` }, code: '333333', message: 'Query execution in progress', success: true };
  }

  private async poll(session: Session, queryId: string) {
    const running = this.running.get(queryId);
    if (!running || running.session.id !== session.id) return fail('000709', `Statement ${queryId} not found`, { queryId });
    return this.wait(running);
  }

  private success(queryId: string, session: Session, r: QueryResult) {
    const inline = r.rows.length <= this.options.inlineRows ? r.rows : r.rows.slice(0, this.options.inlineRows);
    const data: Record<string, unknown> = {
      parameters: PARAMETERS,
      rowtype: r.rowtype,
      rowset: inline,
      total: r.rows.length,
      returned: r.rows.length,
      queryId,
      databaseProvider: null,
      finalDatabaseName: session.engine.database,
      finalSchemaName: session.engine.schema,
      finalWarehouseName: session.engine.warehouse,
      finalRoleName: session.engine.role,
      numberOfBinds: 0,
      arrayBindSupported: false,
      statementTypeId: r.statementTypeId,
      version: 1,
      sendResultTime: Date.now(),
      queryResultFormat: 'json',
    };
    if (r.rows.length > inline.length) {
      const bodies: string[] = [];
      const chunks: { url: string; rowCount: number; uncompressedSize: number; compressedSize: number }[] = [];
      for (let from = inline.length, n = 0; from < r.rows.length; from += this.options.chunkRows, n++) {
        const part = r.rows.slice(from, from + this.options.chunkRows);
        const text = part.map((row) => JSON.stringify(row)).join(',');
        bodies.push(text);
        chunks.push({ url: `${this.base}/outflow-chunks/${queryId}/${n}`, rowCount: part.length, uncompressedSize: text.length, compressedSize: text.length });
      }
      this.keepChunks(queryId, bodies);
      data['chunks'] = chunks;
      data['chunkHeaders'] = { 'x-outflow-result': queryId };
    }
    return ok(data);
  }

  private keepChunks(queryId: string, bodies: string[]): void {
    this.chunks.set(queryId, bodies);
    this.chunkOrder.push(queryId);
    while (this.chunkOrder.length > 64) this.chunks.delete(this.chunkOrder.shift()!);
  }

  private chunk(queryId: string, n: number, req: IncomingMessage, res: ServerResponse): void {
    const body = this.chunks.get(queryId)?.[n];
    if (body === undefined) return sendText(res, 404, '');
    if (/\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''))) {
      sendText(res, 200, gzipSync(body), { 'content-type': 'binary/octet-stream', 'content-encoding': 'gzip' });
    } else {
      sendText(res, 200, body, { 'content-type': 'binary/octet-stream' });
    }
  }
}
