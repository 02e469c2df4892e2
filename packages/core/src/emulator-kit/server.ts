import http, { type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { OutflowError } from '../errors.js';

/**
 * An HTTP server for an emulator whose handler is async: a handler that throws is
 * answered by `onFailure` instead of leaving the request hanging.
 */
export function createEmulatorServer(
  handle: (req: IncomingMessage, res: ServerResponse) => Promise<void>,
  onFailure: (err: unknown, req: IncomingMessage, res: ServerResponse) => void,
): Server {
  return http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => onFailure(err, req, res));
  });
}

/** Listens on 127.0.0.1 (`port` 0 or absent: a free one) and resolves with the port. */
export function listenOnLoopback(server: Server, port: number | undefined, emulator: string): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(
        new OutflowError('OUTFLOW_EMULATOR', `${emulator} emulator could not listen on 127.0.0.1:${port ?? 0}: ${err.code ?? err.message}`, {
          cause: err,
        }),
      );
    });
    server.listen(port ?? 0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

/** Closes the server and every open connection, keep-alive ones included. */
export function closeServer(server: Server): Promise<void> {
  return new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
