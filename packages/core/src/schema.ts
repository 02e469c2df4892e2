import { Type, type TInteger, type TOptional, type TSchema, type TString, type StringOptions } from '@sinclair/typebox';

export { Type };
export type { Static, TSchema } from '@sinclair/typebox';

/**
 * A string config property holding a secret (token, password, key). It is redacted from
 * logs, errors, state and plan output, and may be given as `${env:NAME}`.
 */
export function Secret(options: StringOptions & { description: string }): TString {
  return Type.String({ ...options, secret: true });
}

/**
 * The optional `timeoutMs` property of a connection that sends requests: how long one
 * request waits for its answer, in milliseconds (`defaultMs` when unset).
 */
export function TimeoutMs(defaultMs = 30_000): TOptional<TInteger> {
  return Type.Optional(
    Type.Integer({
      minimum: 1,
      // A timer cannot wait longer than about 24.8 days; a day is more than any answer needs.
      maximum: 86_400_000,
      default: defaultMs,
      description: 'How long to wait for one answer before giving up on the request, in milliseconds.',
    }),
  );
}

/** Paths (dot-separated) of the properties marked `secret: true` in a schema. */
export function secretPaths(schema: TSchema | Record<string, unknown>, prefix = ''): string[] {
  const s = schema as Record<string, unknown>;
  if (s['secret'] === true) return [prefix];
  const out: string[] = [];
  const props = s['properties'] as Record<string, Record<string, unknown>> | undefined;
  if (props) {
    for (const [k, v] of Object.entries(props)) out.push(...secretPaths(v, prefix ? `${prefix}.${k}` : k));
  }
  return out;
}
