import { Secret, Type, type Static } from '@outflow/core';

/** Where the Slack Web API answers; a sandbox connection points `slackApiUrl` at the emulator. */
export const DEFAULT_API_URL = 'https://slack.com/api/';

/**
 * The connection config, declared once: the TypeScript type below is derived from it, and
 * Outflow validates outflow.yaml against it. The bot token is `Secret()`, so Outflow masks
 * it in every log line, error and plan.
 */
export const configSchema = Type.Object(
  {
    token: Secret({
      pattern: '^xoxb-',
      minLength: 10,
      description: 'A bot token (xoxb-…) of a Slack app installed in the workspace, with the chat:write, channels:read, groups:read, channels:history and groups:history scopes.',
    }),
    slackApiUrl: Type.Optional(
      Type.String({
        pattern: '^https?://',
        default: DEFAULT_API_URL,
        description: "The Web API's address, https://slack.com/api/ unless told otherwise; a sandbox connection points it at the emulator.",
      }),
    ),
    timeoutMs: Type.Optional(
      Type.Integer({
        minimum: 1,
        // A timer cannot wait longer than about 24.8 days; a day is more than any answer needs.
        maximum: 86_400_000,
        default: 30_000,
        description: 'How long to wait for one answer before giving up on the request, in milliseconds.',
      }),
    ),
  },
  { additionalProperties: false, description: 'Post messages to Slack channels with a bot token.' },
);

export type SlackConfig = Static<typeof configSchema>;
