/**
 * Renders a template: keeps the lines between `#if condition` and `#endif` when the
 * condition holds, drops the directive lines, and replaces each `__token__`. A condition is
 * one or more alternatives separated by `|`, each one or more flags joined by `&`, a flag
 * preceded by `!` standing for its absence: `#if source|stream`, `#if each&!fetch`. The flags
 * are the roles chosen, `standalone` or `monorepo`, and what generate() adds (`batch` or
 * `each`, `fetch`). Directives are written as comments (`// #if source`, ` * #if source` in a
 * doc comment, `<!-- #if source -->`), so templates stay valid TypeScript and Markdown.
 */
export function render(text: string, flags: readonly string[], tokens: Record<string, string>): string {
  const out: string[] = [];
  let keep = true;
  let open = false;
  for (const line of text.split('\n')) {
    const directive = /^\s*(?:\/\/|<!--|\*|#)\s*#(if\s+([a-z|&!]+)|endif)\b/.exec(line);
    if (directive === null) {
      if (keep) out.push(line);
      continue;
    }
    if (directive[2] !== undefined) {
      if (open) throw new Error(`template: nested #if in "${line.trim()}"`);
      open = true;
      keep = directive[2].split('|').some((alternative) => alternative.split('&').every((f) => (f.startsWith('!') ? !flags.includes(f.slice(1)) : flags.includes(f))));
    } else {
      open = false;
      keep = true;
    }
  }
  if (open) throw new Error('template: an #if without #endif');
  let result = out.join('\n');
  for (const [token, value] of Object.entries(tokens)) result = result.split(token).join(value);
  return result;
}
