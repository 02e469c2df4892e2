export interface WorkspacePackage {
  /** The package name, e.g. `@outflow/connector-hubspot`. */
  name: string;
  /** Its folder relative to the repository root, e.g. `connectors/hubspot`. */
  dir: string;
  /** Its vitest project name: `connector-<folder>` under connectors/, else the folder name. */
  project: string;
  /** Each exported subpath (`''`, `/emulator`) mapped to its TypeScript source, relative to the root. */
  entries: Record<string, string>;
  /** Whether it has a test/ folder. */
  hasTests: boolean;
  /** Whether it builds with tsc (has a tsconfig.json). */
  typescript: boolean;
}
export function workspacePackages(root?: string): WorkspacePackage[];
export function sourceAliases(packages?: WorkspacePackage[]): Array<[specifier: string, source: string]>;
