import { destinationError, type OutflowError } from './errors.js';

/**
 * The error for an answer whose body is larger than a connector reads: retryable, since
 * the answer may be a passing fault of the server (and a write it answered may have been
 * applied, which the engine handles as an unknown outcome).
 */
export function answerTooLarge(where: string, limit: number, status?: number): OutflowError {
  return destinationError(
    `answer too large: ${where} answered${status === undefined ? '' : ` HTTP ${status}`} with a body of more than ${limit} bytes; the rest was not read`,
    { retryable: true, ...(status === undefined ? {} : { status }) },
  );
}

/** Where an answer body comes from: a fetch `Response.body`, or any byte stream (a Node `IncomingMessage`). */
export type AnswerBody = ReadableStream<Uint8Array> | AsyncIterable<Uint8Array> | null | undefined;

export interface ReadAnswerOptions {
  /** The most bytes read; a larger body fails with {@link answerTooLarge}. */
  limit: number;
  /** Who answered, for the error: e.g. `webhook receiver at https://hooks.example.com`. */
  where: string;
  /** The answer's HTTP status, for the error. */
  status?: number;
  /** The answer's Content-Length header, when it has one: a larger declared size fails before reading. */
  contentLength?: string | null;
}

/**
 * Reads an answer body as UTF-8 text, at most `limit` bytes. A body that says (by its
 * Content-Length) or turns out to be larger fails with a retryable "answer too large"
 * error as soon as that is known: the stream is cancelled there, so the rest is never
 * read or buffered and the connection is closed.
 */
export async function readAnswer(body: AnswerBody, options: ReadAnswerOptions): Promise<string> {
  const { limit, where, status } = options;
  const declared = options.contentLength == null ? Number.NaN : Number(options.contentLength);
  if (Number.isFinite(declared) && declared > limit) {
    await cancel(body);
    throw answerTooLarge(where, limit, status);
  }
  if (body == null) return '';
  const decoder = new TextDecoder();
  let size = 0;
  let text = '';
  if (isWebStream(body)) {
    const reader = body.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        size += value.byteLength;
        if (size > limit) {
          await reader.cancel().catch(() => undefined);
          throw answerTooLarge(where, limit, status);
        }
        text += decoder.decode(value, { stream: true });
      }
    } finally {
      reader.releaseLock();
    }
  } else {
    // Leaving the loop early destroys the stream (and with it the socket).
    for await (const chunk of body) {
      size += chunk.byteLength;
      if (size > limit) throw answerTooLarge(where, limit, status);
      text += decoder.decode(chunk, { stream: true });
    }
  }
  return text + decoder.decode();
}

function isWebStream(body: NonNullable<AnswerBody>): body is ReadableStream<Uint8Array> {
  return typeof (body as ReadableStream<Uint8Array>).getReader === 'function';
}

async function cancel(body: AnswerBody): Promise<void> {
  if (body == null) return;
  if (isWebStream(body)) await body.cancel().catch(() => undefined);
  else (body as { destroy?: () => void }).destroy?.();
}
