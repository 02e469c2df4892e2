import { Secret, Type, type Static } from '@outflow/core';

/** The connection config of the Snowflake connector. */
export const configSchema = Type.Object(
  {
    account: Type.String({
      minLength: 1,
      description: 'The account identifier, e.g. `myorg-myaccount` (the part before `.snowflakecomputing.com`).',
    }),
    username: Type.String({ minLength: 1, description: 'The user Outflow logs in as.' }),
    password: Type.Optional(Secret({ minLength: 1, description: "The user's password. Give either this or `privateKey`." })),
    privateKey: Type.Optional(
      Secret({
        minLength: 1,
        description: 'A PEM private key (PKCS#8) registered for the user, for key-pair (JWT) authentication. Give either this or `password`.',
      }),
    ),
    warehouse: Type.Optional(Type.String({ minLength: 1, description: 'The warehouse queries run on; the user default when left out.' })),
    database: Type.String({ minLength: 1, description: 'The database models are read from.' }),
    schema: Type.String({ minLength: 1, default: 'PUBLIC', description: 'The schema unqualified model names are looked up in.' }),
    role: Type.Optional(Type.String({ minLength: 1, description: 'The role to use; the user default when left out.' })),
    outflowSchema: Type.String({
      minLength: 1,
      default: 'OUTFLOW',
      description:
        "A schema Outflow owns in `database`, created on demand: it holds the STREAMs, the staging tables of streaming syncs and the delivered state of pushed-down diffs. Grant the role CREATE SCHEMA or create it beforehand.",
    }),
    accessUrl: Type.Optional(
      Type.String({
        pattern: '^https?://',
        description: 'Overrides the URL the driver connects to (a private link, or the local emulator); derived from `account` when left out.',
      }),
    ),
  },
  { additionalProperties: false },
);

export type SnowflakeConfig = Static<typeof configSchema>;
