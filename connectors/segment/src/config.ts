import { Secret, Type, type Static } from '@outflow/core';

export const DEFAULT_HOST = 'https://api.segment.io';
export const DEFAULT_PATH = '/v1/batch';
export const DEFAULT_TIMEOUT_MS = 10_000;

/** The connection config of a Segment destination: a source's write key and where its Tracking API is. */
export const configSchema = Type.Object(
  {
    writeKey: Secret({
      minLength: 1,
      description: "The write key of the Segment source the events go to (the source's Settings → API Keys). Sent as Basic auth, as analytics-node sends it.",
    }),
    host: Type.Optional(
      Type.String({
        pattern: '^https?://',
        default: DEFAULT_HOST,
        description: 'The Tracking API address: https://api.segment.io, or https://events.eu1.segmentapis.com for an EU workspace; a sandbox connection points it at the emulator.',
      }),
    ),
    path: Type.Optional(
      Type.String({
        pattern: '^/',
        default: DEFAULT_PATH,
        description: 'The batch endpoint under `host`.',
      }),
    ),
    timeoutMs: Type.Optional(
      Type.Integer({
        minimum: 1,
        // A timer cannot wait longer than about 24.8 days; a day is more than any answer needs.
        maximum: 86_400_000,
        default: DEFAULT_TIMEOUT_MS,
        description: 'How long to wait for the answer to one batch request before giving up on it, in milliseconds.',
      }),
    ),
  },
  { additionalProperties: false, description: 'Send events (track, identify, page, group) to a Segment source through its Tracking API.' },
);

export type SegmentConfig = Static<typeof configSchema>;
