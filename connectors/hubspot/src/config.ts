import { Secret, Type, type RateLimit, type Static } from '@outflow/core';

/** The connection config of a HubSpot destination. */
export const configSchema = Type.Object(
  {
    accessToken: Secret({
      minLength: 1,
      description: 'The access token of a HubSpot private app with CRM read and write scopes for the objects synced.',
    }),
    tier: Type.Optional(
      Type.Union([Type.Literal('free'), Type.Literal('starter'), Type.Literal('professional'), Type.Literal('enterprise')], {
        default: 'starter',
        description:
          "The account's HubSpot tier; it sets the API rate limits Outflow keeps to (100 requests per 10 s for free and starter, 190 for professional and enterprise).",
      }),
    ),
    capacityPacks: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 2,
        default: 0,
        description: 'How many API limit increase packs the account has; with one or more, 250 requests per 10 s and 1,000,000 more per day each.',
      }),
    ),
    timeZone: Type.Optional(
      Type.String({
        minLength: 1,
        default: 'UTC',
        description: "The account's time zone (IANA name, e.g. Europe/Berlin); HubSpot's daily limit resets at midnight there.",
      }),
    ),
    timeoutMs: Type.Optional(
      Type.Integer({
        minimum: 100,
        // A timer cannot wait longer than about 24.8 days; a day is more than any answer needs.
        maximum: 86_400_000,
        default: 60_000,
        description:
          'How long one HubSpot request may go without an answer, in milliseconds, before it is cancelled and retried (a write whose answer never came is then in doubt).',
      }),
    ),
    maxResponseBytes: Type.Optional(
      Type.Integer({
        minimum: 65_536,
        default: 16 * 1024 * 1024,
        description:
          'The largest answer body read from HubSpot, in bytes. A larger answer is not read further: the call fails as retryable ("answer too large").',
      }),
    ),
    basePath: Type.Optional(
      Type.String({
        pattern: '^https?://',
        description: 'The API address; https://api.hubapi.com unless you point Outflow at a proxy or the emulator.',
      }),
    ),
  },
  { additionalProperties: false, description: 'Write records to HubSpot CRM objects through the CRM v3 API.' },
);

export type HubSpotConfig = Static<typeof configSchema>;

/** How long a request may go unanswered when `timeoutMs` is not set. */
export const DEFAULT_TIMEOUT_MS = 60_000;

/** The largest answer body read when `maxResponseBytes` is not set. */
export const DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024;

/** The documented per-10-second and daily limits of a private app at each tier. */
export const TIER_LIMITS = {
  free: { perTenSeconds: 100, daily: 250_000 },
  starter: { perTenSeconds: 100, daily: 250_000 },
  professional: { perTenSeconds: 190, daily: 625_000 },
  enterprise: { perTenSeconds: 190, daily: 1_000_000 },
} as const;

/** The per-10-second limit with a capacity pack, and the daily requests each pack adds. */
export const CAPACITY_PACK = { perTenSeconds: 250, daily: 1_000_000 } as const;

/**
 * The limits Outflow keeps to for a config: the 10-second window first, then the day. They
 * are HubSpot's own figures, with no slack: HubSpot counts a request when it arrives, the
 * budget counts it from its answer, which is never earlier, so no window of arrivals can
 * hold more than the limit.
 */
export function limitsOf(config: Pick<HubSpotConfig, 'tier' | 'capacityPacks'>): RateLimit[] {
  const tier = TIER_LIMITS[config.tier ?? 'starter'];
  const packs = config.capacityPacks ?? 0;
  const perTenSeconds = packs > 0 ? CAPACITY_PACK.perTenSeconds : tier.perTenSeconds;
  const daily = tier.daily + packs * CAPACITY_PACK.daily;
  return [
    { requests: perTenSeconds, perMs: 10_000 },
    { requests: daily, perMs: 86_400_000 },
  ];
}
