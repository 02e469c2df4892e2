/**
 * Secret values are registered when config is resolved and removed from what people read:
 * logs, error messages, run errors and row-error reasons, command output. Machine state
 * (checkpoints, key-value entries, delivered state) is never redacted: it must read back
 * exactly as written, and a checkpoint that happens to contain a secret's text would
 * otherwise resume from the wrong place.
 */
const MASK = '[REDACTED]';
const secrets = new Set<string>();
let pattern: RegExp | null = null;

/**
 * The ways a secret travels in text: as is, escaped inside a JSON string (a vendor echoing
 * a header in a JSON body), and URL-encoded (a query string, a form body).
 */
function formsOf(value: string): string[] {
  const json = JSON.stringify(value).slice(1, -1);
  // Some serializers also escape `/` and everything outside ASCII.
  const asciiJson = json.replace(/\//g, '\\/').replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  const url = encodeURIComponent(value);
  return [value, json, asciiJson, url, url.replace(/%20/g, '+')];
}

/** A form as a pattern; percent escapes match in either case (`%2F`, `%2f`). */
function patternOf(form: string): string {
  return form
    .replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
    .replace(/%([0-9A-F])([0-9A-F])/g, (_, a: string, b: string) => `%[${a}${a.toLowerCase()}][${b}${b.toLowerCase()}]`);
}

/** Registers a secret value; strings shorter than 4 characters are not worth masking. */
export function registerSecret(value: unknown): void {
  if (typeof value !== 'string' || value.length < 4 || secrets.has(value)) return;
  for (const form of formsOf(value)) secrets.add(form);
  const forms = [...secrets].sort((a, b) => b.length - a.length).map(patternOf);
  pattern = new RegExp(forms.join('|'), 'g');
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
