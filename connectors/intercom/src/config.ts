import { Secret, TimeoutMs, Type, type RateLimit, type Static } from '@outflow/core';

export const DEFAULT_BASE_URL = 'https://api.intercom.io';

/** The connection config of an Intercom destination. */
export const configSchema = Type.Object(
  {
    token: Secret({ minLength: 8, description: "An Intercom access token (a private app's, or an OAuth token) with read and write access to users and companies." }),
    baseUrl: Type.Optional(
      Type.String({
        pattern: '^https?://',
        default: DEFAULT_BASE_URL,
        description: 'The API address: https://api.intercom.io, https://api.eu.intercom.io or https://api.au.intercom.io by region; a sandbox connection points it at the emulator.',
      }),
    ),
    rateLimitPerMinute: Type.Optional(
      Type.Integer({
        minimum: 6,
        default: 10_000,
        description: "The app's API limit per minute (10,000 for a private app unless Intercom set another); Intercom spreads it over 10-second windows, and Outflow keeps to that share.",
      }),
    ),
    deletes: Type.Optional(
      Type.Union([Type.Literal('archive'), Type.Literal('delete')], {
        default: 'archive',
        description: 'What a delete does to a contact Outflow wrote: archive it (reversible; a row that comes back unarchives it) or delete it permanently.',
      }),
    ),
    timeoutMs: TimeoutMs(),
  },
  { additionalProperties: false, description: 'Write contacts (users) to Intercom.' },
);

export type IntercomConfig = Static<typeof configSchema>;

/** The limit Outflow keeps to: the per-minute figure as Intercom spreads it, per 10-second window. */
export function limitOf(config: Pick<IntercomConfig, 'rateLimitPerMinute'>): RateLimit {
  return { requests: Math.floor((config.rateLimitPerMinute ?? 10_000) / 6), perMs: 10_000 };
}
