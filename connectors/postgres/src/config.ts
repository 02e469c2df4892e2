import { Secret, Type, type Static } from '@outflow/core';

/** The connection config of a PostgreSQL source, change stream or destination. */
export const configSchema = Type.Object(
  {
    url: Secret({
      pattern: '^postgres(ql)?://',
      description:
        'Connection string, e.g. postgres://user:password@host:5432/db?sslmode=require. It may hold the password, so it is treated as a secret.',
    }),
    stateSchema: Type.Optional(
      Type.String({
        pattern: '^[a-z_][a-z0-9_]*$',
        default: 'outflow_state',
        description: 'The schema Outflow owns in this database for pushed-down diff state (created on first use).',
      }),
    ),
    readBatchSize: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 100_000, default: 5000, description: 'Rows fetched from the cursor per batch when reading a model.' }),
    ),
    writeBatchSize: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 10_000, default: 1000, description: 'The most records written in one statement as a destination.' }),
    ),
    writeConcurrency: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 32, default: 2, description: 'How many write statements may run at once as a destination.' }),
    ),
    heartbeatSeconds: Type.Optional(
      Type.Number({
        minimum: 1,
        maximum: 300,
        default: 10,
        description: 'How often an open change stream reports its confirmed position to the server, so an idle stream does not hold WAL.',
      }),
    ),
  },
  { additionalProperties: false, description: 'PostgreSQL: snapshot source, logical-replication change stream and destination.' },
);

export type PostgresConfig = Static<typeof configSchema>;

export const DEFAULTS = { stateSchema: 'outflow_state', readBatchSize: 5000, writeBatchSize: 1000, writeConcurrency: 2, heartbeatSeconds: 10 } as const;
