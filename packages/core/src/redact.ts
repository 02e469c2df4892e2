/**
 * Secret values are registered when config is resolved and removed from every string
 * Outflow writes out: logs, error messages, ledger rows, plan output.
 */
const MASK = '[REDACTED]';
const secrets = new Set<string>();
let pattern: RegExp | null = null;

/** Registers a secret value; strings shorter than 4 characters are not worth masking. */
export function registerSecret(value: unknown): void {
  if (typeof value !== 'string' || value.length < 4 || secrets.has(value)) return;
  secrets.add(value);
  const escaped = [...secrets]
    .sort((a, b) => b.length - a.length)
    .map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  pattern = new RegExp(escaped.join('|'), 'g');
}

/** Returns `text` with every registered secret replaced by `[REDACTED]`. */
export function redact(text: string): string {
  return pattern === null ? text : text.replace(pattern, MASK);
}

/** Deep-copies a JSON-like value with secrets masked in every string. */
export function redactValue<T>(value: T): T {
  if (pattern === null) return value;
  if (typeof value === 'string') return redact(value) as T;
  if (Array.isArray(value)) return value.map((v) => redactValue(v)) as T;
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = redactValue(v);
    return out as T;
  }
  return value;
}

/** Masks the values at schema paths marked `secret: true` (for printing a config). */
export function maskSecretsBySchema(value: unknown, schema: unknown): unknown {
  if (schema === null || typeof schema !== 'object') return value;
  const s = schema as Record<string, unknown>;
  if (s['secret'] === true && value !== undefined) return MASK;
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const props = (s['properties'] ?? {}) as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = maskSecretsBySchema(v, props[k]);
    return out;
  }
  return value;
}

/** Test hook: forget every registered secret. */
export function clearSecrets(): void {
  secrets.clear();
  pattern = null;
}
