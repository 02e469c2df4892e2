export { main, ExitCode, type MainIO } from './main.js';
export { openWorkspace, type Workspace } from './workspace.js';
export { parseInterval } from '@outflow/core';
