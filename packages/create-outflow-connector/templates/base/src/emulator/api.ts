import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendJson } from '@outflow/core/emulator-kit';

/** What a route handler gets: the request, the response, path parameters and the query. */
export type Handler = (req: IncomingMessage, res: ServerResponse, params: Record<string, string>, query: URLSearchParams) => Promise<void>;

/** Answers with the API's error body, `{ "error": { "code", "message" } }`. */
export function sendError(res: ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}): void {
  sendJson(res, status, { error: { code, message } }, headers);
}
