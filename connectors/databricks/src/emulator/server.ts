/**
 * The HTTPS front of the emulator: one path (the warehouse's HTTP path) taking Thrift
 * binary-protocol calls by POST, as @databricks/sql sends them. Requests are checked in
 * the order a warehouse does: path, method, bearer token (401 without one, 403 for a
 * token it does not know), then the test faults, then the call itself.
 */
import { createServer as createHttpsServer, type Server } from 'node:https';
import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import thrift from 'thrift';
import TCLIService from '@databricks/sql/thrift/TCLIService.js';
import { closeServer, FaultInjector, listenOnLoopback, loseAnswer, readBody, resetConnection, sendJson, type KitFaults } from '@outflow/core/emulator-kit';
import { selfSignedCertificate } from './certificate.js';
import { Engine, type Namespace } from './engine.js';
import { CliService, type StatementLogEntry } from './service.js';

export type { StatementLogEntry } from './service.js';

/**
 * The faults tests switch on, the kit's: `latencyMs`; `failRequests` (503 with
 * Retry-After, as a warehouse that is starting answers); `status429Every` (429 with
 * Retry-After); `errorRate` (500); `resetRate`; `loseAnswers` / `lostAnswerRate` (the call
 * is carried out — a statement runs and commits — and its answer is lost).
 */
export type DatabricksFaults = KitFaults;

/** The largest Thrift request taken; a larger one is answered 413. */
const MAX_REQUEST_BYTES = 16 * 1024 * 1024;
/** Seconds a client is told to wait after a 429 or 503. */
const RETRY_AFTER_SECONDS = '1';

export interface ServerOptions extends Namespace {
  token: string;
  path: string;
  dir?: string;
  port?: number;
  faults: DatabricksFaults;
  retention: { versions?: number };
}

export class DatabricksServer {
  readonly host = '127.0.0.1';
  /** Statements executed over the wire, in order. */
  readonly statements: StatementLogEntry[] = [];
  private readonly faults: FaultInjector<DatabricksFaults>;
  private readonly service: CliService;
  private readonly processor: { process(input: unknown, output: unknown): void };
  private stopped = false;

  private constructor(
    private readonly server: Server,
    readonly port: number,
    readonly caCert: string,
    readonly engine: Engine,
    private readonly options: ServerOptions,
  ) {
    this.faults = new FaultInjector(options.faults);
    this.service = new CliService(engine, { catalog: options.catalog, schema: options.schema }, this.statements);
    this.processor = new TCLIService.Processor(this.service.handlers() as never) as never;
  }

  static async start(options: ServerOptions): Promise<DatabricksServer> {
    const engine = await Engine.open({
      namespace: { catalog: options.catalog, schema: options.schema },
      ...(options.dir === undefined ? {} : { dir: options.dir }),
      ...(options.retention.versions === undefined ? {} : { keepVersions: options.retention.versions }),
    });
    const { cert, key } = selfSignedCertificate();
    const ref: { server?: DatabricksServer } = {};
    const https = createHttpsServer({ cert, key }, (req, res) => {
      ref.server!.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) sendJson(res, 500, { error_code: 'INTERNAL_ERROR', message: `emulator failure: ${err instanceof Error ? err.message : String(err)}` });
      });
    });
    const port = await listenOnLoopback(https as unknown as HttpServer, options.port, 'databricks').catch(async (err: unknown) => {
      await engine.close();
      throw err;
    });
    ref.server = new DatabricksServer(https, port, cert, engine, options);
    return ref.server;
  }

  get sessionCount(): number {
    return this.service.sessionCount;
  }

  setFaults(faults: DatabricksFaults): void {
    this.faults.set(faults);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await closeServer(this.server as unknown as HttpServer);
    await this.engine.close();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0]!.replace(/\/+$/, '');
    if (path !== this.options.path) return sendJson(res, 404, { error_code: 'ENDPOINT_NOT_FOUND', message: `No API found for 'POST ${path}'` });
    if (req.method !== 'POST') return sendJson(res, 405, { error_code: 'BAD_REQUEST', message: `${req.method} is not allowed: Thrift calls are POSTed` }, { allow: 'POST' });
    const auth = req.headers.authorization;
    if (auth === undefined || !/^Bearer \S/.test(auth)) return sendJson(res, 401, { error_code: 'UNAUTHENTICATED', message: 'Credential was not sent or was of an unsupported type for this API.' });
    if (auth !== `Bearer ${this.options.token}`) return sendJson(res, 403, { error_code: 'PERMISSION_DENIED', message: 'Invalid access token.' });
    await this.faults.delay();
    if (this.stopped) return;
    switch (this.faults.decide()?.kind) {
      case 'reset':
        return resetConnection(req);
      case 'unavailable':
        return sendJson(res, 503, { error_code: 'TEMPORARILY_UNAVAILABLE', message: 'The SQL warehouse is starting; retry later (test fault).' }, { 'retry-after': RETRY_AFTER_SECONDS });
      case 'throttled':
        return sendJson(res, 429, { error_code: 'REQUEST_LIMIT_EXCEEDED', message: 'Too many requests (test fault).' }, { 'retry-after': RETRY_AFTER_SECONDS });
      case 'error':
        return sendJson(res, 500, { error_code: 'INTERNAL_ERROR', message: 'Internal error (test fault).' });
    }
    const body = await readBody(req, res, MAX_REQUEST_BYTES);
    if (!body.ok) return sendJson(res, body.status, { error_code: 'BAD_REQUEST', message: body.message });
    const answer = await this.call(body.value);
    const lost = this.faults.afterApply();
    if (lost !== undefined) {
      return loseAnswer(req, lost, () => sendJson(res, 500, { error_code: 'INTERNAL_ERROR', message: 'Internal error (test fault).' }));
    }
    res.writeHead(200, { 'content-type': 'application/x-thrift', 'content-length': String(answer.length) });
    res.end(answer);
  }

  /** Runs one Thrift call through the Processor and resolves with the encoded answer. */
  private call(request: Buffer): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => {
      const Transport = thrift.TBufferedTransport as unknown as new (buffer: undefined, onFlush: (b: Buffer) => void) => unknown;
      const Protocol = thrift.TBinaryProtocol as unknown as new (transport: unknown) => unknown;
      const receive = (thrift.TBufferedTransport as unknown as { receiver(cb: (t: unknown) => void): (data: Buffer) => void }).receiver((input) => {
        try {
          this.processor.process(new Protocol(input), new Protocol(new Transport(undefined, resolve)));
        } catch (err) {
          reject(err instanceof Error ? err : new Error(String(err)));
        }
      });
      receive(request);
    });
  }
}
