/**
 * Event payloads: a JSON structure whose string leaves are Liquid templates over the change
 * (`{{ after.amount }}`, `{{ before.status }}`, `{{ key }}`, `{{ trigger }}`, `{{ change }}`).
 *
 * Liquid runs sandboxed: templates come from outflow.yaml only — `include`, `render` and
 * `layout` are refused when the template is parsed, and no file is ever read — an unknown
 * filter is a parse error, only a value's own properties are read, and parsing, rendering
 * and memory are bounded. A variable the change lacks (`before` of an insert) renders as
 * nothing.
 *
 * A leaf that is one output alone (`"{{ after.amount }}"`, filters allowed) keeps the
 * value's JSON type (a number stays a number, a list a list); any other string leaf renders
 * to a string. Rendered strings are placed in the payload as values, never spliced into
 * JSON text, so they need no escaping: a quote in a customer's name stays a quote. Leaves
 * that are not strings are sent as written.
 */
import { Liquid, type Template } from 'liquidjs';
import type { Row, Value } from '../envelope.js';

/** What a payload's templates see. */
export interface PayloadScope {
  /** The row after the change; absent for a delete. */
  after?: Row;
  /** The row before the change, as far as it is known; absent for an insert. */
  before?: Row;
  /** The model key. */
  key: string;
  /** The trigger's name. */
  trigger: string;
  /** `insert`, `update` or `delete`. */
  change: 'insert' | 'update' | 'delete';
}

/** The names a template may start a variable with. */
export const SCOPE_NAMES: readonly string[] = ['after', 'before', 'key', 'trigger', 'change'];

/** A template of a payload that does not parse: where in the payload, and where in the template. */
export class TemplateError extends Error {
  constructor(
    message: string,
    /** The path of the leaf inside the payload, e.g. ['properties', 'total']. */
    readonly path: readonly string[],
    /** 1-based line and column inside the template, when Liquid says. */
    readonly line?: number,
    readonly column?: number,
  ) {
    super(message);
    this.name = 'TemplateError';
  }
}

function refuseFiles(tag: string) {
  return {
    parse(): void {
      throw new Error(`"{% ${tag} %}" is not available: payload templates cannot read other files`);
    },
    *render(): Generator<unknown, void, unknown> {},
  };
}

function sandbox(): Liquid {
  const liquid = new Liquid({
    templates: {},
    strictFilters: true,
    ownPropertyOnly: true,
    parseLimit: 100_000,
    renderLimit: 1_000,
    memoryLimit: 10_000_000,
  });
  for (const tag of ['include', 'render', 'layout']) liquid.registerTag(tag, refuseFiles(tag));
  return liquid;
}

const liquid = sandbox();
const SINGLE_OUTPUT = /^\s*\{\{-?((?:(?!\{\{|\}\}|\{%).)*?)-?\}\}\s*$/s;

type Leaf = { t: 'value'; value: Value } | { t: 'text'; template: Template[] } | { t: 'expr'; expr: string };
type Node = Leaf | { t: 'object'; entries: [string, Node][] } | { t: 'list'; items: Node[] };

/** A compiled payload. */
export interface Payload {
  /** Renders the payload for one change. */
  render(scope: PayloadScope): Row;
  /** The fields of `before` its templates read (a diff keeps them for deletes and updates). */
  readonly beforeFields: readonly string[];
}

function located(err: unknown, path: readonly string[]): TemplateError {
  const text = err instanceof Error ? err.message : String(err);
  const m = /, line:(\d+), col:(\d+)$/.exec(text);
  const message = m === null ? text : text.slice(0, m.index);
  return m === null ? new TemplateError(message, path) : new TemplateError(message, path, Number(m[1]), Number(m[2]));
}

function compileLeaf(text: string, path: readonly string[], vars: Set<string>): Leaf {
  let template: Template[];
  try {
    template = liquid.parse(text);
  } catch (err) {
    throw located(err, path);
  }
  for (const v of liquid.globalFullVariablesSync(template)) {
    const head = v.split(/[.[]/)[0]!;
    if (!SCOPE_NAMES.includes(head)) {
      throw new TemplateError(`"${v}" is not something a payload can read; templates read ${SCOPE_NAMES.join(', ')} (e.g. {{ after.${head} }})`, path);
    }
    vars.add(v);
  }
  const single = SINGLE_OUTPUT.exec(text);
  return single === null ? { t: 'text', template } : { t: 'expr', expr: single[1]!.trim() };
}

function compileNode(value: unknown, path: string[], vars: Set<string>): Node {
  if (typeof value === 'string') return compileLeaf(value, path, vars);
  if (Array.isArray(value)) return { t: 'list', items: value.map((v, i) => compileNode(v, [...path, String(i)], vars)) };
  if (value !== null && typeof value === 'object') {
    return { t: 'object', entries: Object.entries(value).map(([k, v]) => [k, compileNode(v, [...path, k], vars)]) };
  }
  return { t: 'value', value: value as Value };
}

/** A rendered value as JSON: what Liquid hands back may be undefined or a non-JSON object. */
function json(value: unknown): Value {
  if (value === undefined) return null;
  return JSON.parse(JSON.stringify(value) ?? 'null') as Value;
}

function renderNode(node: Node, scope: PayloadScope): Value {
  switch (node.t) {
    case 'value':
      return node.value;
    case 'text':
      return String(liquid.renderSync(node.template, scope));
    case 'expr':
      return json(liquid.evalValueSync(node.expr, scope));
    case 'list':
      return node.items.map((n) => renderNode(n, scope));
    case 'object':
      return Object.fromEntries(node.entries.map(([k, n]) => [k, renderNode(n, scope)]));
  }
}

/**
 * Compiles a payload: every string leaf is parsed as a Liquid template and may read only
 * the {@link SCOPE_NAMES}. Throws a {@link TemplateError} for the first leaf that does not.
 */
export function compilePayload(payload: Record<string, unknown>): Payload {
  const vars = new Set<string>();
  const root = compileNode(payload, [], vars);
  const beforeFields = [...vars].filter((v) => v.startsWith('before.')).map((v) => v.slice('before.'.length).split(/[.[]/)[0]!);
  return {
    render: (scope) => renderNode(root, scope) as Row,
    beforeFields: [...new Set(beforeFields)],
  };
}
