/** An alert receiver for tests: a real HTTP server on 127.0.0.1 that verifies signatures and counts what it got. */
import { createServer, type Server } from 'node:http';
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, verifySignature } from '@outflow/connector-webhook';
import type { AlertNotice } from '../src/serve/alerts.js';

/** The signing secret the receiver expects. */
export const ALERT_SECRET = 'alert-signing-secret';

/** A receiver on 127.0.0.1 that keeps the notices whose signature verifies, and can refuse some first. */
export interface Receiver {
  url: string;
  notices: AlertNotice[];
  /** Requests refused for a bad signature. */
  unsigned: number;
  /** Answer this status to the next requests, as many as the list holds. */
  failNext: number[];
  stop(): Promise<void>;
}

export async function startReceiver(): Promise<Receiver> {
  const receiver: Receiver = { url: '', notices: [], unsigned: 0, failNext: [], stop: async () => {} };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const status = receiver.failNext.shift();
      if (status !== undefined) return void res.writeHead(status, { 'retry-after': '0' }).end();
      const body = Buffer.concat(chunks);
      const headers = { timestamp: req.headers[TIMESTAMP_HEADER] as string | undefined, signature: req.headers[SIGNATURE_HEADER] as string | undefined };
      if (verifySignature(ALERT_SECRET, headers, body) !== null) {
        receiver.unsigned++;
        return void res.writeHead(401).end();
      }
      receiver.notices.push(JSON.parse(body.toString()) as AlertNotice);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  receiver.url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/alerts`;
  receiver.stop = () => new Promise<void>((r) => server.close(() => r()));
  return receiver;
}

