/**
 * Renders a template: keeps the lines between `#if flag[|flag…]` and `#endif` when one of
 * the flags is set (the roles chosen, and `standalone` or `monorepo`), drops the directive lines, and replaces each `__token__`. Directives
 * are written as comments (`// #if source`, ` * #if source` in a doc comment,
 * `<!-- #if source -->`), so templates stay valid TypeScript and Markdown.
 */
export function render(text: string, flags: readonly string[], tokens: Record<string, string>): string {
  const out: string[] = [];
  let keep = true;
  let open = false;
  for (const line of text.split('\n')) {
    const directive = /^\s*(?:\/\/|<!--|\*|#)\s*#(if\s+([a-z|]+)|endif)\b/.exec(line);
    if (directive === null) {
      if (keep) out.push(line);
      continue;
    }
    if (directive[2] !== undefined) {
      if (open) throw new Error(`template: nested #if in "${line.trim()}"`);
      open = true;
      keep = directive[2].split('|').some((f) => flags.includes(f));
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
