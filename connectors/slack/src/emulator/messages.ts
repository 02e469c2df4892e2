/**
 * What `chat.postMessage` accepts, by Slack's documented limits: `text` is cut at 40,000
 * characters (posted, with a `message_truncated` warning); `blocks` is a JSON array of at
 * most 50 blocks of known types (a section's text at most 3,000 characters, a header's
 * 150); `metadata` is `{ event_type, event_payload }`; a message needs `text` or `blocks`.
 * Arguments arrive as form fields (strings, arrays and objects as JSON text) or as a JSON
 * body (values as they are).
 */
import type { MessageMetadata } from './workspace.js';

export const MAX_TEXT = 40_000;
export const MAX_BLOCKS = 50;
const MAX_SECTION_TEXT = 3_000;
const MAX_HEADER_TEXT = 150;
const BLOCK_TYPES = new Set(['actions', 'context', 'divider', 'file', 'header', 'image', 'input', 'markdown', 'rich_text', 'section', 'video']);

/** A message's content as it will be stored, or the `error` Slack answers, with warnings. */
export type Content =
  | { ok: true; text: string; blocks?: unknown[]; metadata?: MessageMetadata; warnings: string[] }
  | { ok: false; error: string };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A form field's JSON text parsed; a JSON body's value as it is; `undefined` when unreadable. */
function structured(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  try {
    return JSON.parse(value) as unknown;
  } catch {
    return undefined;
  }
}

const textOf = (v: unknown): string | undefined => (isObject(v) && typeof v['text'] === 'string' ? v['text'] : undefined);

/** Why a block is invalid, or undefined when Slack takes it. */
function blockProblem(block: unknown): string | undefined {
  if (!isObject(block) || typeof block['type'] !== 'string' || !BLOCK_TYPES.has(block['type'])) return 'unknown block type';
  if (block['type'] === 'section' && (textOf(block['text'])?.length ?? 0) > MAX_SECTION_TEXT) return 'section text too long';
  if (block['type'] === 'header' && (textOf(block['text']) === undefined || textOf(block['text'])!.length > MAX_HEADER_TEXT)) return 'header text missing or too long';
  return undefined;
}

/** Reads `text`, `blocks` and `metadata` of a chat.postMessage call by Slack's rules. */
export function readContent(args: Record<string, unknown>): Content {
  let blocks: unknown[] | undefined;
  if (args['blocks'] !== undefined && args['blocks'] !== '') {
    const parsed = structured(args['blocks']);
    if (!Array.isArray(parsed)) return { ok: false, error: 'invalid_blocks_format' };
    if (parsed.length > MAX_BLOCKS || parsed.some((b) => blockProblem(b) !== undefined)) return { ok: false, error: 'invalid_blocks' };
    blocks = parsed;
  }
  let metadata: MessageMetadata | undefined;
  if (args['metadata'] !== undefined && args['metadata'] !== '') {
    const parsed = structured(args['metadata']);
    if (!isObject(parsed) || typeof parsed['event_type'] !== 'string' || parsed['event_type'] === '' || !isObject(parsed['event_payload'])) {
      return { ok: false, error: 'invalid_metadata_format' };
    }
    metadata = { event_type: parsed['event_type'], event_payload: parsed['event_payload'] };
  }
  const raw = args['text'];
  const text = typeof raw === 'string' ? raw : raw === undefined || raw === null ? '' : String(raw);
  if (text.trim() === '' && blocks === undefined) return { ok: false, error: 'no_text' };
  const warnings = text.length > MAX_TEXT ? ['message_truncated'] : [];
  return { ok: true, text: text.slice(0, MAX_TEXT), ...(blocks ? { blocks } : {}), ...(metadata ? { metadata } : {}), warnings };
}
