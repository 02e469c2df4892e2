// Types of scripts/registry.mjs; see its opening comment.

export interface Registry {
  /** `http://127.0.0.1:<port>`, no trailing slash. */
  url: string;
  /** The storage folder (undefined for `registryAt`). */
  storage: string | undefined;
  /** A publishing user's token (npmEnv passes it to npm). */
  token: string;
  /** What Verdaccio printed so far. */
  log(): string;
  /** Stops the server; removes its storage unless `startRegistry` was given one. */
  stop(): Promise<void>;
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** A non-private workspace package. */
export interface WorkspacePackage {
  name: string;
  version: string;
  /** Its folder, absolute. */
  dir: string;
}

export interface PublishedPackage {
  name: string;
  version: string;
  /** The workspace folder it was packed from. */
  dir: string;
  /** The paths in the tarball, as `npm pack` lists them (`dist/index.js`). */
  files: string[];
  /** The tarball's bytes. */
  tarball: Buffer;
}

export interface LockedPackage {
  name: string;
  version: string;
  integrity: string;
  /** `name@version` */
  spec: string;
}

export const repoRoot: string;
export const networkGuard: string;

export function startRegistry(options?: { storage?: string }): Promise<Registry>;
export function registryAt(url: string): Promise<Registry>;
export function publishWorkspaces(
  registry: Registry,
  options?: { packages?: string[] },
): Promise<PublishedPackage[]>;
export function mirrorDependencies(
  registry: Registry,
  roots: string[],
): Promise<{ packages: string[]; bytes: number; fetched: string[] }>;
export function dependencyClosure(roots: string[]): LockedPackage[];
export function publishablePackages(): WorkspacePackage[];
export function buildWorkspaces(dirs?: string[]): Promise<ExecResult>;
export function declaredFiles(pkg: Record<string, unknown>): string[];
export function tarEntries(tgz: Buffer): { path: string; data: Buffer }[];
export function tarballManifest(tgz: Buffer): Record<string, unknown> & { name: string; version: string };
export function publishTarball(registry: Registry, manifest: { name: string; version: string }, tgz: Buffer): Promise<void>;

export function npmEnv(registry: Registry, options: { cache: string }): NodeJS.ProcessEnv;
export function cleanEnv(base?: NodeJS.ProcessEnv): NodeJS.ProcessEnv;
export function guardedEnv(env?: NodeJS.ProcessEnv): NodeJS.ProcessEnv;
export function exec(cmd: string, args: string[], options?: { cwd?: string; env?: NodeJS.ProcessEnv; timeout?: number }): Promise<ExecResult>;
export function must(result: ExecResult, what: string): ExecResult;
