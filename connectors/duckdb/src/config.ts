import { Type, type Static } from '@outflow/core';

/** The connection config of the DuckDB source. */
export const configSchema = Type.Object(
  {
    path: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'The DuckDB database file, relative to the working directory. Leave it out for an empty in-memory database (useful with `file` models).',
      }),
    ),
    readOnly: Type.Boolean({
      default: true,
      description:
        'Open the database file read-only, so Outflow can never change the warehouse. Read-only opens still work while other processes read the file, but not while one has it open for writing.',
    }),
    threads: Type.Optional(
      Type.Integer({ minimum: 1, description: 'How many threads DuckDB may use; all cores when left out.' }),
    ),
    memoryLimit: Type.Optional(
      Type.String({
        pattern: '^\\d+(\\.\\d+)?\\s*([KMGTkmgt][Ii]?)?[Bb]$',
        description: "The most memory DuckDB may use before spilling, e.g. '2GB'; 80% of RAM when left out.",
      }),
    ),
  },
  { additionalProperties: false },
);

export type DuckDBConfig = Static<typeof configSchema>;
