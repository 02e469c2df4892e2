import { Secret, TimeoutMs, Type, type Static } from '@outflow/core';

/**
 * The connection config, declared once: the TypeScript type below is derived from it, and
 * Outflow validates outflow.yaml against it. Every property needs a description (shown in
 * errors and docs); a credential is declared with `Secret()` (`secret: true`), so Outflow
 * masks its value in every log line, error and plan.
 */
export const configSchema = Type.Object(
  {
    baseUrl: Type.Optional(
      Type.String({
        pattern: '^https?://',
        default: 'https://api.__name__.example',
        description: "The API's base URL. A sandbox connection points it at the emulator.",
      }),
    ),
    token: Secret({ minLength: 8, description: 'The API token, sent as a bearer token.' }),
    timeoutMs: TimeoutMs(),
    // #if source
    pageSize: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 1000, default: 500, description: 'How many rows one page of a read holds.' }),
    ),
    // #endif
  },
  { additionalProperties: false, description: 'A connection to __Name__.' },
);

export type __Name__Config = Static<typeof configSchema>;

export const DEFAULT_BASE_URL = 'https://api.__name__.example';
