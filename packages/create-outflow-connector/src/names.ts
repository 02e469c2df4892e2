/** The names a new connector goes by, worked out from what the author typed. */
export interface Names {
  /** The manifest's name: lower-case letters, digits and dashes (`acme-crm`). */
  connector: string;
  /** The npm package name (`outflow-connector-acme-crm`, `@acme/crm`, `@outflow/connector-acme-crm`). */
  packageName: string;
  /** What `connector:` says in outflow.yaml: the short name for `@outflow/connector-*`, else the package name. */
  configName: string;
  /** For identifiers: `AcmeCrm`. */
  pascal: string;
  /** For environment variables: `ACME_CRM`. */
  env: string;
}

/** A name or flag the author must change; the CLI exits 2 with its message. */
export class UsageError extends Error {
  override name = 'UsageError';
}

const CONNECTOR = /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/;
const SCOPED = /^@([a-z0-9][a-z0-9._~-]*)\/([a-z0-9][a-z0-9._~-]*)$/;
const PREFIXES = ['outflow-connector-', 'connector-'];

function connectorName(shortName: string, typed: string): string {
  const name = PREFIXES.reduce((n, p) => (n.startsWith(p) && n.length > p.length ? n.slice(p.length) : n), shortName);
  if (!CONNECTOR.test(name)) {
    throw new UsageError(
      `"${typed}" is not a valid connector name: use lower-case letters, digits and single dashes, starting with a letter (e.g. acme-crm), or a package name (outflow-connector-acme-crm, @acme/outflow-connector-crm)`,
    );
  }
  return name;
}

/**
 * `acme` → `outflow-connector-acme` (inside the Outflow repository: `@outflow/connector-acme`);
 * a full name (`outflow-connector-acme`, `@scope/anything`) is kept as given.
 */
export function resolveNames(typed: string, options: { monorepo?: boolean } = {}): Names {
  const input = typed.trim();
  if (input === '') throw new UsageError('a connector name is required, e.g. `npm create outflow-connector acme`');
  let packageName: string;
  let connector: string;
  const scoped = SCOPED.exec(input);
  if (scoped !== null) {
    packageName = input;
    connector = connectorName(scoped[2]!, input);
  } else if (input.startsWith('@')) {
    throw new UsageError(`"${input}" is not a valid scoped package name: use @scope/name in lower case`);
  } else {
    connector = connectorName(input, input);
    packageName = input.startsWith('outflow-connector-') ? input : options.monorepo ? `@outflow/connector-${connector}` : `outflow-connector-${connector}`;
  }
  if (packageName.length > 214) throw new UsageError(`"${packageName}" is longer than npm allows (214 characters)`);
  const parts = connector.split('-');
  return {
    connector,
    packageName,
    configName: packageName === `@outflow/connector-${connector}` ? connector : packageName,
    pascal: parts.map((p) => p[0]!.toUpperCase() + p.slice(1)).join(''),
    env: parts.join('_').toUpperCase(),
  };
}

export const ROLES = ['source', 'stream', 'destination'] as const;
export type Role = (typeof ROLES)[number];

/**
 * The roles to write, in a fixed order. A stream always comes with a source: the engine
 * reconciles a stream that went stale by a diff, which reads the model through the source.
 */
export function resolveRoles(typed: readonly string[]): Role[] {
  const wanted = new Set<string>();
  for (const entry of typed) for (const role of entry.split(',')) if (role.trim() !== '') wanted.add(role.trim().toLowerCase());
  for (const role of wanted) {
    if (!(ROLES as readonly string[]).includes(role)) throw new UsageError(`unknown role "${role}": choose destination, source or stream`);
  }
  if (wanted.size === 0) wanted.add('destination');
  if (wanted.has('stream')) wanted.add('source');
  return ROLES.filter((r) => wanted.has(r));
}

export const WRITES = ['batch', 'each'] as const;
/** How a destination writes: `batch`, many operations in one request; `each`, one request per record. */
export type Writes = (typeof WRITES)[number];

/** The way a destination writes, as typed (`batch` when nothing is). */
export function resolveWrites(typed: string | undefined): Writes {
  const writes = (typed ?? '').trim().toLowerCase();
  if (writes === '') return 'batch';
  if (!(WRITES as readonly string[]).includes(writes)) throw new UsageError(`unknown --writes "${typed}": choose batch (several records a request) or each (one request per record)`);
  return writes as Writes;
}
