const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** The longest `schedule.every`: what a timer can wait (about 24.8 days). */
export const MAX_INTERVAL_MS = 2 ** 31 - 1;

/** Parses an interval such as `30s`, `15m`, `6h` or `1d` into milliseconds. */
export function parseInterval(text: string): number {
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(text.trim());
  if (!m) throw new TypeError(`"${text}" is not an interval such as 30s, 15m, 6h or 1d`);
  return Number(m[1]) * UNITS[m[2]!]!;
}
