// Types of scripts/release-local.mjs; see its opening comment.
import type { Registry } from './registry.mjs';

export function pendingChangesets(root?: string): string[];
export function release(registry: Registry, options?: { root?: string }): Promise<{ versioned: string[]; published: string }>;
