import { Writable } from 'node:stream';
import { pino, type Logger as PinoLogger, type DestinationStream } from 'pino';
import { redact } from './redact.js';

export type Logger = PinoLogger;

export interface LoggerOptions {
  level?: string;
  /** Where lines go; standard error by default. Every line passes through the redactor. */
  destination?: NodeJS.WritableStream;
}

/** A pino JSON logger whose every output line has registered secrets masked. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const target = options.destination ?? process.stderr;
  const stream = new Writable({
    write(chunk: Buffer | string, _enc, done) {
      target.write(redact(chunk.toString()), () => done());
    },
  });
  return pino(
    { level: options.level ?? process.env['OUTFLOW_LOG_LEVEL'] ?? 'info', base: undefined },
    stream as unknown as DestinationStream,
  );
}

/** A logger that discards everything (for tests and library use). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
