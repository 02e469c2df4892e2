import { Secret, Type, type Static } from '@outflow/core';

export const DEFAULT_TIMEOUT_MS = 30_000;

/** The connection config of a Braze destination: a workspace's REST API key and its instance. */
export const configSchema = Type.Object(
  {
    restApiKey: Secret({
      minLength: 8,
      description:
        'A REST API key of the workspace (Settings → APIs and Identifiers), sent as a bearer token, with the permissions the syncs need: users.track, campaigns.trigger.send, canvas.trigger.send.',
    }),
    instanceUrl: Type.String({
      pattern: '^https?://',
      description: "The workspace's REST endpoint, e.g. https://rest.iad-01.braze.com (its instance is in the dashboard's API settings); a sandbox connection points it at the emulator.",
    }),
    timeoutMs: Type.Optional(
      Type.Integer({
        minimum: 1,
        // A timer cannot wait longer than about 24.8 days; a day is more than any answer needs.
        maximum: 86_400_000,
        default: DEFAULT_TIMEOUT_MS,
        description: 'How long to wait for one answer before giving up on the request, in milliseconds.',
      }),
    ),
  },
  { additionalProperties: false, description: 'Send user attributes, events and purchases, and API-triggered campaigns and Canvases, to Braze.' },
);

export type BrazeConfig = Static<typeof configSchema>;
