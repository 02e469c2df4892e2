import { Secret, Type, type Static } from '@outflow/core';

/** The connection config of a Salesforce destination. */
export const configSchema = Type.Object(
  {
    instanceUrl: Type.String({
      pattern: '^https?://',
      description: "The org's address (its My Domain URL), e.g. https://acme.my.salesforce.com.",
    }),
    accessToken: Type.Optional(
      Secret({
        minLength: 1,
        description: 'An OAuth access token (session id) of a user with API access; give it or jwt. It cannot be renewed: when it expires, the sync fails until it is replaced. Use jwt for unattended syncs.',
      }),
    ),
    jwt: Type.Optional(
      Type.Object(
        {
          clientId: Type.String({ minLength: 1, description: "The connected app's consumer key (the assertion's issuer)." }),
          username: Type.String({ minLength: 1, description: 'The Salesforce username the sync acts as; pre-authorised for the connected app.' }),
          privateKey: Secret({
            minLength: 1,
            description: 'The PEM private key whose certificate is uploaded to the connected app; it signs the JWT bearer assertion.',
          }),
          loginUrl: Type.Optional(
            Type.String({
              pattern: '^https?://',
              default: 'https://login.salesforce.com',
              description: 'Where the assertion is exchanged for a session: https://login.salesforce.com, https://test.salesforce.com for sandboxes, or a My Domain login URL.',
            }),
          ),
          audience: Type.Optional(
            Type.String({
              pattern: '^https?://',
              description: 'The assertion\'s audience; https://test.salesforce.com when loginUrl is test.salesforce.com, else https://login.salesforce.com.',
            }),
          ),
        },
        { additionalProperties: false, description: 'Sign in by the OAuth 2.0 JWT bearer flow; the session is renewed once when Salesforce says it expired.' },
      ),
    ),
    apiVersion: Type.Optional(Type.String({ pattern: '^\\d{2,3}\\.0$', default: '62.0', description: 'The REST API version used.' })),
    bulkThreshold: Type.Optional(
      Type.Integer({
        minimum: 1,
        default: 2000,
        description:
          'Operations of one kind in one batch from which Outflow uses a Bulk API 2.0 job instead of sObject Collections (200 records a request). Bulk jobs take fewer API requests but finish in seconds to minutes.',
      }),
    ),
    dailyApiShare: Type.Optional(
      Type.Number({
        exclusiveMinimum: 0,
        maximum: 100,
        default: 50,
        description:
          "The share (percent) of the org's daily API request allocation Outflow may use, as Salesforce reports it in Sforce-Limit-Info. Beyond it the sync pauses, so other integrations keep theirs.",
      }),
    ),
    timeoutMs: Type.Optional(
      Type.Integer({
        minimum: 100,
        maximum: 86_400_000,
        default: 120_000,
        description: 'How long one Salesforce request may take to answer, body included, in milliseconds, before it is cancelled (a write whose answer never came is then in doubt).',
      }),
    ),
    maxAnswerBytes: Type.Optional(
      Type.Integer({
        minimum: 1024,
        default: 67_108_864,
        description: 'The largest answer body read from Salesforce, in bytes (64 MiB by default); a larger answer fails the request as retryable ("answer too large") and is not read further.',
      }),
    ),
    bulkTimeoutMs: Type.Optional(
      Type.Integer({
        minimum: 1000,
        maximum: 86_400_000,
        default: 1_800_000,
        description: 'How long Outflow waits for a Bulk API job to finish before it gives up on the batch as in doubt.',
      }),
    ),
  },
  { additionalProperties: false, description: 'Write records to Salesforce sObjects through sObject Collections and Bulk API 2.0.' },
);

export type SalesforceConfig = Static<typeof configSchema>;

export const DEFAULTS = {
  apiVersion: '62.0',
  bulkThreshold: 2000,
  dailyApiShare: 50,
  timeoutMs: 120_000,
  maxAnswerBytes: 67_108_864,
  bulkTimeoutMs: 1_800_000,
  loginUrl: 'https://login.salesforce.com',
} as const;
