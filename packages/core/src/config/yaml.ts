import { isAlias, isMap, isNode, isScalar, isSeq, visit, type Document } from 'yaml';

/** The largest configuration file read: an outflow.yaml is a few kilobytes. */
export const MAX_CONFIG_BYTES = 10 * 1024 * 1024;
/** How deep maps and lists may nest; the schema needs fewer than ten levels. */
export const MAX_DEPTH = 64;

/** Tags a config may carry: YAML's core types (`!!str 0123` keeps a string a string). */
const CORE_TAGS = new Set(['str', 'int', 'float', 'bool', 'null', 'map', 'seq'].map((t) => `tag:yaml.org,2002:${t}`));
/** Characters YAML does not allow in a stream (outside c-printable). */
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const NOT_PRINTABLE = /[\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x84\x86-\x9F\uFFFE\uFFFF]/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const NAMES: Record<number, string> = { 0: 'NUL', 7: 'BEL', 8: 'BS', 0x1b: 'ESC', 0x7f: 'DEL' };

/** A problem at a 1-based line and column of the text. */
export interface TextProblem {
  line: number;
  column: number;
  message: string;
}

/** A problem at a node of the document: its offset in the text and its path in the config. */
export interface NodeProblem {
  offset: number;
  segs: string[];
  message: string;
}

/**
 * The text of a configuration file's bytes: UTF-8 (a byte-order mark is dropped), and only
 * characters YAML allows. Otherwise where it stops being that.
 */
export function configText(bytes: Uint8Array): { text: string } | { problem: TextProblem } {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    const bad = firstInvalidByte(bytes);
    const before = new TextDecoder('utf-8').decode(bytes.subarray(0, bad));
    const byte = `0x${bytes[bad]!.toString(16).toUpperCase().padStart(2, '0')}`;
    return { problem: { ...lineColumn(before), message: `is not valid UTF-8 (byte ${byte}); save the file as UTF-8` } };
  }
  const m = NOT_PRINTABLE.exec(text);
  if (m) {
    const code = m[0].codePointAt(0)!;
    const name = NAMES[code] ? ` (${NAMES[code]})` : '';
    const u = `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
    return { problem: { ...lineColumn(text.slice(0, m.index)), message: `contains the control character ${u}${name}, which YAML does not allow; remove it` } };
  }
  return { text };
}

/** The position just after `prefix`. */
function lineColumn(prefix: string): { line: number; column: number } {
  const lines = prefix.split('\n');
  return { line: lines.length, column: lines.at(-1)!.length + 1 };
}

/** The offset of the first byte that is not part of valid UTF-8. */
function firstInvalidByte(bytes: Uint8Array): number {
  const decodes = (n: number): boolean => {
    try {
      new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(0, n), { stream: true });
      return true;
    } catch {
      return false;
    }
  };
  if (decodes(bytes.length)) {
    // Only a sequence cut off at the end: point at its first byte.
    let i = bytes.length - 1;
    while (i > 0 && (bytes[i]! & 0xc0) === 0x80) i--;
    return i;
  }
  let lo = 0;
  let hi = bytes.length;
  while (hi - lo > 1) {
    const mid = (lo + hi) >>> 1;
    if (decodes(mid)) lo = mid;
    else hi = mid;
  }
  return lo;
}

/**
 * What YAML allows but a configuration must not hold, found in the parsed document before
 * anything turns it into values: tags other than YAML's core types (`!!js/function`,
 * `!!binary`, custom `!tags`), merge keys (`<<`), keys that are not strings or are
 * `__proto__`, aliases to no anchor, nesting deeper than {@link MAX_DEPTH}, numbers that are
 * not finite or too large to be exact, strings with NUL or unpaired surrogates, and values
 * of other types (a YAML 1.1 timestamp). At most 100 are listed.
 */
export function yamlProblems(doc: Document, text: string): NodeProblem[] {
  const out: NodeProblem[] = [];
  const at = (node: unknown, segs: string[], message: string) => {
    if (out.length < 100) out.push({ offset: isNode(node) && node.range ? node.range[0] : 0, segs, message });
  };
  const tagProblem = (node: unknown, segs: string[]): boolean => {
    const tag = isNode(node) ? node.tag : undefined;
    if (tag === undefined || CORE_TAGS.has(tag)) return false;
    const shown = tag.startsWith('tag:yaml.org,2002:') ? `!!${tag.slice('tag:yaml.org,2002:'.length)}` : tag;
    const message = `the tag ${shown} is not supported in a configuration file; write a plain value`;
    // The node starts at its value; point at the tag written before it.
    const value = isNode(node) && node.range ? node.range[0] : 0;
    const written = text.lastIndexOf(shown, value);
    if (written >= 0 && value - written <= shown.length + 80 && out.length < 100) out.push({ offset: written, segs, message });
    else at(node, segs, message);
    return true;
  };
  const value = (node: unknown, segs: string[], what: string): void => {
    if (!isScalar(node)) return;
    const v = node.value;
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) at(node, segs, `${what} is not a finite number (${clip(String(node.source ?? v))})`);
      else if (Number.isInteger(v) && !Number.isSafeInteger(v)) at(node, segs, `${what} is too large a number to be exact (more than ${Number.MAX_SAFE_INTEGER})`);
    } else if (typeof v === 'string') {
      if (v.includes('\0')) at(node, segs, `${what} contains a NUL character`);
      else if (LONE_SURROGATE.test(v)) at(node, segs, `${what} contains an invalid Unicode character (an unpaired surrogate such as \\uD800)`);
    } else if (v !== null && typeof v !== 'boolean') {
      at(node, segs, `${what} is a ${v instanceof Date ? 'timestamp' : typeof v} value, which a configuration cannot hold; write it in quotes`);
    }
  };
  const walk = (node: unknown, segs: string[], depth: number): void => {
    if (out.length >= 100 || tagProblem(node, segs)) return;
    if (isAlias(node)) {
      if (!node.resolve(doc)) at(node, segs, `the alias *${node.source} names no anchor (&${node.source}) defined before it`);
      return;
    }
    if (isScalar(node)) return value(node, segs, 'the value');
    if (!isMap(node) && !isSeq(node)) return;
    if (depth > MAX_DEPTH) return at(node, segs, `is nested more than ${MAX_DEPTH} levels deep`);
    if (isSeq(node)) {
      node.items.forEach((item, i) => walk(item, [...segs, String(i)], depth + 1));
      return;
    }
    for (const pair of node.items) {
      const key = pair.key;
      if (tagProblem(key, segs)) continue;
      if (!isScalar(key) || typeof key.value !== 'string') {
        const shown = isScalar(key) ? clip(String(key.source ?? key.value)) : isAlias(key) ? `*${key.source}` : isNode(key) ? 'a list or map' : 'nothing';
        at(key ?? node, segs, `a key must be a string, not ${shown}${isScalar(key) && key.value !== null ? `; write it in quotes: "${shown}"` : ''}`);
        continue;
      }
      if (key.value === '<<' && key.type === 'PLAIN') {
        at(key, segs, 'merge keys (<<) are not supported in a configuration file; write the properties out');
        continue;
      }
      if (key.value === '__proto__') {
        at(key, segs, '"__proto__" cannot be a key in a configuration file');
        continue;
      }
      value(key, segs, `the key "${key.value.replaceAll('\0', '\\0')}"`);
      walk(pair.value, [...segs, key.value], depth + 1);
    }
  };
  walk(doc.contents, [], 0);
  return out;
}

function clip(text: string): string {
  return text.length > 40 ? `${text.slice(0, 37)}…` : text;
}

/** The first alias of the document, where an alias expansion that is too large is reported. */
export function firstAlias(doc: Document): number {
  let offset = 0;
  visit(doc, {
    Alias(_, node) {
      offset = node.range?.[0] ?? 0;
      return visit.BREAK;
    },
  });
  return offset;
}
