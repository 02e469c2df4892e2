import { Type, type Static } from '@sinclair/typebox';
import { Secret } from '../schema.js';

const Name = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$', description: 'A name of letters, digits, dots, dashes and underscores.' });
const Columns = Type.Union([Type.String({ minLength: 1 }), Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })], {
  description: 'A column name, or a list of column names for a composite key.',
});

export const ConnectionSchema = Type.Object(
  {
    connector: Type.String({
      minLength: 1,
      description: 'The connector: a short name (hubspot → @outflow/connector-hubspot), a package name, or a local path.',
    }),
    config: Type.Optional(Type.Object({}, { description: "The connector's own settings; see `outflow schema`." })),
    sandbox: Type.Optional(
      Type.Boolean({ description: "Run against the connector's local emulator instead of the real service (no account needed)." }),
    ),
    maxWait: Type.Optional(
      Type.String({
        pattern: '^[0-9]+(ms|s|m|h|d)$',
        default: '5m',
        description:
          'The longest wait the system may ask for before a retry (a Retry-After, a rate-limit reset). A batch asked to wait longer fails as retryable, saying how long was asked, and the next run sends it; a stream waits this long and tries again. An interval such as 30s or 5m, at most 1d.',
      }),
    ),
  },
  { additionalProperties: false, description: 'A named connection to a warehouse or an operational tool.' },
);

export const FromSchema = Type.Object(
  {
    connection: Type.String({ minLength: 1, description: 'The name of a connection whose connector provides a source.' }),
    table: Type.Optional(Type.String({ minLength: 1, description: 'A table or view to read.' })),
    sql: Type.Optional(Type.String({ minLength: 1, description: 'A SQL query whose result is the model.' })),
    file: Type.Optional(Type.String({ minLength: 1, description: 'A file the source reads (CSV or Parquet for DuckDB).' })),
    primaryKey: Columns,
    pushdown: Type.Optional(
      Type.Boolean({
        description:
          'Diff inside the source when its connector can (the delivered state then lives in a schema Outflow owns there). Default: true.',
      }),
    ),
  },
  { additionalProperties: false, description: 'The model a sync reads.' },
);

export const TriggerSchema = Type.Object(
  {
    name: Type.String({
      pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$',
      description: 'The trigger\'s name, unique in its sync: part of each event\'s idempotency key and shown by plan.',
    }),
    on: Type.Union([Type.Literal('insert'), Type.Literal('update'), Type.Literal('delete')], {
      description: 'The change that fires it: a row appearing, changing or leaving the model.',
    }),
    fields: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        minItems: 1,
        description: 'on: update only: fire only when one of these model columns changed.',
      }),
    ),
    when: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          "A condition on the row, e.g. \"amount > 1000\" or \"status == 'paid'\": comparisons (== != > >= < <= in), and, or, not, parentheses, column names and literals. On insert it is read on the new row, on delete on the removed one; on update the trigger fires when the condition becomes true (false or unknown before, true after), once per crossing.",
      }),
    ),
    object: Type.Optional(Type.String({ minLength: 1, description: "Where this trigger's events go, instead of the sync's to.object." })),
    payload: Type.Record(Type.String(), Type.Unknown(), {
      description:
        'The event: a map whose string leaves are Liquid templates over {{ after.column }}, {{ before.column }}, {{ key }}, {{ trigger }} and {{ change }}. A leaf that is a single {{ … }} keeps the value\'s type.',
    }),
  },
  { additionalProperties: false, description: 'An event trigger (mode event).' },
);

export const ToSchema = Type.Object(
  {
    connection: Type.String({ minLength: 1, description: 'The name of a connection whose connector provides a destination.' }),
    object: Type.String({ minLength: 1, description: 'The destination object, e.g. contacts; in mode event, where events go unless a trigger names its own.' }),
    mode: Type.Union([Type.Literal('upsert'), Type.Literal('update'), Type.Literal('insert'), Type.Literal('mirror'), Type.Literal('event')], {
      default: 'upsert',
      description:
        'upsert: create or update by match key; update: only update existing records; insert: only create; mirror: create, update and delete so the object mirrors the model; event: send an event or message when a trigger fires (see triggers).',
    }),
    matchKey: Type.Optional(
      Type.Record(Type.String(), Type.String(), {
        description: 'Destination field → model column used to find existing records, e.g. { email: EMAIL }.',
        minProperties: 1,
        maxProperties: 1,
      }),
    ),
    triggers: Type.Optional(
      Type.Array(TriggerSchema, {
        minItems: 1,
        description: 'mode event: what turns a change into an event. Each change fires every trigger that matches it, once per trigger.',
      }),
    ),
    deletes: Type.Union([Type.Literal('ignore'), Type.Literal('delete'), Type.Literal('clear')], {
      default: 'ignore',
      description:
        'What a row leaving the model does: ignore it, delete the record, or clear the mapped fields. Only records Outflow wrote are touched.',
    }),
  },
  { additionalProperties: false, description: 'Where a sync writes.' },
);

export const DeliverySchema = Type.Object(
  {
    batchSize: Type.Optional(Type.Integer({ minimum: 1, description: "Operations per write call; capped at the destination's maximum." })),
    concurrency: Type.Optional(Type.Integer({ minimum: 1, description: "Write calls in flight; capped at the destination's maximum." })),
    maxAttempts: Type.Optional(
      Type.Integer({
        minimum: 1,
        default: 6,
        description: 'Tries per record (and per batch refused as a whole) within one run for a retryable failure, with backoff, before the run gives up on it.',
      }),
    ),
    maxRowAttempts: Type.Optional(
      Type.Integer({
        minimum: 1,
        default: 5,
        description:
          'Runs that may try a record that keeps failing with a retryable error. After that many, the record is parked: it waits until its row changes or a person runs `outflow retry`. A stream parks such a record at once (no later run would send it).',
      }),
    ),
  },
  { additionalProperties: false, description: 'Delivery tuning; the defaults suit most destinations.' },
);

export const FailWhenSchema = Type.Object(
  {
    rejectedPct: Type.Optional(
      Type.Number({
        minimum: 0,
        maximum: 100,
        description:
          'Fail the run when more than this percentage of the records it sent were rejected. A diff run stops early once the share is certain to be exceeded whatever the rest does; a stream run is judged once it has sent 100 records.',
      }),
    ),
    rejected: Type.Optional(Type.Integer({ minimum: 0, description: 'Fail the run when more than this many records were rejected; it stops as soon as that happens.' })),
  },
  {
    additionalProperties: false,
    description: 'When rejected records fail a run (exit code 1) instead of only being parked. Without it, rejections never fail a run.',
  },
);

export const MaxDeletesSchema = Type.Object(
  {
    pct: Type.Number({
      minimum: 0,
      maximum: 100,
      default: 50,
      description:
        'Largest share (percent) of the records Outflow owns in the destination that one diff run may delete or clear. A run that would remove more stops before sending anything, unless run with `--allow-deletes`. 100 turns the guard off. Default: 50.',
    }),
  },
  { additionalProperties: false, description: 'The blast-radius guard against mass deletes (an empty or broken model).' },
);

const AlertInterval = (description: string) => Type.String({ pattern: '^[0-9]+(ms|s|m|h|d)$', description });

export const AlertRulesSchema = Type.Object(
  {
    runFailed: Type.Optional(Type.Boolean({ description: 'Alert when a run fails; resolved by the next run that does not.' })),
    rejectedPct: Type.Optional(
      Type.Number({
        minimum: 0,
        maximum: 100,
        description: 'Alert when a run rejects more than this share (percent) of the records it sent; resolved by a run at or below it.',
      }),
    ),
    lagAbove: Type.Optional(
      AlertInterval("Stream syncs: alert when delivery is further behind the source's commits than this, e.g. 30s; resolved once it is back within it."),
    ),
    noSuccessFor: Type.Optional(AlertInterval('Alert when no run has succeeded for this long, e.g. 6h; resolved by the next run that succeeds.')),
  },
  {
    additionalProperties: false,
    description:
      "When `outflow serve` alerts about a sync; each rule is off unless set. On a sync, in place of `alerts.rules` (`{}` turns alerts off for it).",
  },
);

export const SyncSchema = Type.Object(
  {
    name: Name,
    from: FromSchema,
    capture: Type.Union([Type.Literal('diff'), Type.Literal('stream')], {
      default: 'diff',
      description: 'diff: compare snapshots with what was delivered; stream: follow the source change log.',
    }),
    schedule: Type.Optional(
      Type.Union(
        [
          Type.Object(
            { every: Type.String({ pattern: '^[0-9]+(ms|s|m|h|d)$', description: 'An interval such as 30s, 15m, 6h or 1d.' }) },
            { additionalProperties: false },
          ),
          Type.Object(
            {
              cron: Type.String({ minLength: 1, description: 'A cron expression: 5 fields, or 6 with seconds first (e.g. `0 */2 * * *`).' }),
              timezone: Type.Optional(Type.String({ minLength: 1, description: 'The IANA time zone the cron expression is read in (UTC by default).' })),
            },
            { additionalProperties: false },
          ),
        ],
        { description: 'When `outflow serve` and `run --watch` run a diff sync: `{ every: 15m }` or `{ cron: "0 * * * *", timezone: Europe/Paris }`.' },
      ),
    ),
    to: ToSchema,
    mappings: Type.Optional(
      Type.Record(Type.String(), Type.String(), {
        description: 'Destination field → model column. Without it, every model column is sent under its own name.',
      }),
    ),
    delivery: Type.Optional(DeliverySchema),
    failWhen: Type.Optional(FailWhenSchema),
    maxDeletes: Type.Optional(MaxDeletesSchema),
    alerts: Type.Optional(AlertRulesSchema),
  },
  { additionalProperties: false, description: 'One sync: a model kept in step with a destination object.' },
);

export const StateSchema = Type.Object(
  {
    dir: Type.String({ default: '.outflow', description: 'Folder (relative to this file) for the ledger and diff state.' }),
  },
  { additionalProperties: false, description: 'Where Outflow keeps its state.' },
);

export const LedgerSchema = Type.Object(
  {
    postgres: Type.Optional(
      Type.Object(
        {
          url: Secret({
            minLength: 1,
            description: 'The PostgreSQL server holding the ledger, postgres://user:password@host:port/database; a secret, so write it as ${env:NAME}.',
          }),
          schema: Type.String({
            pattern: '^[a-z_][a-z0-9_]{0,62}$',
            default: 'outflow',
            description: "The schema of the ledger's tables (created and migrated by Outflow): lower-case letters, digits and underscores.",
          }),
        },
        {
          additionalProperties: false,
          description: 'A ledger in PostgreSQL, shared by every runner pointed at it: each sync runs in one runner at a time (@outflow/ledger-postgres).',
        },
      ),
    ),
  },
  {
    additionalProperties: false,
    description: 'Where runs, checkpoints, row errors, leases and connection state are kept: the SQLite file in the state folder unless set.',
  },
);

export const AlertsSchema = Type.Object(
  {
    webhook: Type.Object(
      {
        url: Secret({
          pattern: '^https?://[^\\s]+$',
          description: 'Where alerts are POSTed (http or https); a secret, as such URLs often carry a token, so write it as ${env:NAME}.',
        }),
        secret: Secret({ minLength: 1, description: 'The HMAC-SHA256 signing secret: each alert carries x-outflow-signature, as the webhook destination signs.' }),
      },
      { additionalProperties: false, description: 'The receiver of alerts and recovery notices.' },
    ),
    rules: Type.Optional(AlertRulesSchema),
  },
  {
    additionalProperties: false,
    description: "Alerts from `outflow serve`, once per incident and a notice when it resolves: `rules` apply to every sync without `alerts` of its own.",
  },
);

export const OutflowConfigSchema = Type.Object(
  {
    version: Type.Literal(1, { description: 'The config file format version; always 1.' }),
    state: Type.Optional(StateSchema),
    ledger: Type.Optional(LedgerSchema),
    alerts: Type.Optional(AlertsSchema),
    connections: Type.Record(Name, ConnectionSchema, {
      description: 'Named connections; a name is letters, digits, dots, dashes and underscores.',
      additionalProperties: false,
    }),
    syncs: Type.Array(SyncSchema, { description: 'The syncs to run.' }),
  },
  { additionalProperties: false, description: 'An Outflow configuration file (outflow.yaml).' },
);

export type ConnectionConfig = Static<typeof ConnectionSchema>;
export type SyncConfig = Static<typeof SyncSchema>;
export type TriggerConfig = Static<typeof TriggerSchema>;
export type OutflowConfig = Static<typeof OutflowConfigSchema>;
export type LedgerConfig = Static<typeof LedgerSchema>;
export type AlertsConfig = Static<typeof AlertsSchema>;
export type AlertRules = Static<typeof AlertRulesSchema>;
