import { Secret, Type, type Static } from '@outflow/core';

/**
 * The connection config, declared once: the TypeScript type is derived from it and Outflow
 * validates outflow.yaml against it. Credentials are `Secret()`, masked in every log line,
 * error and plan. Give `token`, or `clientId` with `clientSecret` (checked when connecting).
 */
export const configSchema = Type.Object(
  {
    host: Type.String({
      minLength: 1,
      pattern: '^[^/:\\s]+$',
      description: 'The workspace host name, e.g. `dbc-1234.cloud.databricks.com` (no scheme, no path).',
    }),
    port: Type.Integer({ minimum: 1, maximum: 65_535, default: 443, description: 'The HTTPS port of the SQL warehouse endpoint.' }),
    httpPath: Type.String({
      minLength: 1,
      pattern: '^/',
      description: "The SQL warehouse's (or cluster's) HTTP path, e.g. `/sql/1.0/warehouses/abc123`.",
    }),
    token: Type.Optional(Secret({ minLength: 1, description: 'A personal access token. Give either this, or `clientId` and `clientSecret`.' })),
    clientId: Type.Optional(
      Type.String({ minLength: 1, description: "A service principal's OAuth client id, for OAuth machine-to-machine authentication (with `clientSecret`)." }),
    ),
    clientSecret: Type.Optional(Secret({ minLength: 1, description: "The service principal's OAuth secret (with `clientId`)." })),
    catalog: Type.Optional(Type.String({ minLength: 1, description: "The catalog unqualified names are looked up in; the warehouse's default when left out." })),
    schema: Type.String({ minLength: 1, default: 'default', description: 'The schema unqualified table names are looked up in.' }),
    stateSchema: Type.Optional(
      Type.String({
        minLength: 1,
        pattern: '^[A-Za-z_][A-Za-z0-9_]*$',
        default: 'outflow_state',
        description:
          'The schema Outflow owns in the catalog for the delivered state of diff syncs, which diff in Databricks (created on first use).',
      }),
    ),
    caCert: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'A PEM certificate trusted in addition to the public roots (a self-hosted endpoint, a TLS-inspecting proxy, the sandbox). Server certificates are always verified.',
      }),
    ),
  },
  { additionalProperties: false, description: 'A connection to a Databricks SQL warehouse.' },
);

export type DatabricksConfig = Static<typeof configSchema>;
