/**
 * Event triggers (`to.mode: event`): which changes of a row become events, and the payload
 * each one sends.
 *
 * - `on: insert` fires when a row appears (and `when`, if given, holds for it);
 * - `on: update` fires when a row changes — when one of `fields` changed, if given — and,
 *   with `when`, only when the condition becomes true: it held not before the change (or
 *   nothing is known of before) and holds after. A score going 85 → 90 does not cross
 *   "score > 80" again; 90 → 70 → 85 does.
 * - `on: delete` fires when a row leaves the model (and `when` held for it).
 *
 * `before` is the source's own before-image where it gives one, over the values event mode
 * keeps of the delivered row (see {@link EventState}); the kept values are the ones the
 * triggers need: `fields`, the columns of `when`, and the `before.*` a payload reads.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Change, Row } from '../envelope.js';
import type { SyncConfig, TriggerConfig } from '../config/schema.js';
import { OutflowError } from '../errors.js';
import { ConditionError, parseCondition, type Condition } from './condition.js';
import { compilePayload, TemplateError, type Payload } from './template.js';

/** One event a change fires. */
export interface FiredEvent {
  /** The trigger's name. */
  trigger: string;
  /** Where it goes: the trigger's object, or the sync's. */
  object: string;
  /** The rendered payload. */
  payload: Row;
}

/** A sync's compiled triggers. */
export interface EventTriggers {
  /** The model columns whose delivered values event mode keeps per key, sorted. */
  readonly watched: readonly string[];
  /**
   * The events `change` fires, in the order the triggers are written. `before` is what is
   * known of the row before the change (see the module comment), undefined when nothing is.
   */
  fire(change: Change, before: Row | undefined): FiredEvent[];
}

/** A problem of an event-mode sync: its path under the sync (e.g. to/triggers/0/when), and what is wrong. */
export interface TriggerProblem {
  path: string[];
  message: string;
}

interface Compiled {
  config: TriggerConfig;
  when?: Condition;
  payload: Payload;
}

function compileOne(t: TriggerConfig, i: number, problems: TriggerProblem[]): Compiled | undefined {
  const at = ['to', 'triggers', String(i)];
  let when: Condition | undefined;
  if (t.when !== undefined) {
    try {
      when = parseCondition(t.when);
    } catch (err) {
      if (!(err instanceof ConditionError)) throw err;
      problems.push({ path: [...at, 'when'], message: `the condition ${JSON.stringify(t.when)} does not parse at character ${err.offset + 1}: ${err.message}` });
    }
  }
  if (t.fields !== undefined && t.on !== 'update') {
    problems.push({ path: [...at, 'fields'], message: `fields applies to on: update only (this trigger is on: ${t.on}); remove it` });
  }
  try {
    const payload = compilePayload(t.payload);
    return when === undefined ? { config: t, payload } : { config: t, when, payload };
  } catch (err) {
    if (!(err instanceof TemplateError)) throw err;
    const message = err.line === undefined ? err.message : `the template does not parse (line ${err.line}, column ${err.column} of the template): ${err.message}`;
    problems.push({ path: [...at, 'payload', ...err.path], message });
    return undefined;
  }
}

function compileAll(sync: Pick<SyncConfig, 'to' | 'mappings'>): { compiled: Compiled[]; problems: TriggerProblem[] } {
  const { to } = sync;
  const problems: TriggerProblem[] = [];
  const compiled: Compiled[] = [];
  if (to.mode !== 'event') {
    if (to.triggers !== undefined) problems.push({ path: ['to', 'triggers'], message: `triggers apply to mode: event only (this sync's mode is ${to.mode ?? 'upsert'})` });
    return { compiled, problems };
  }
  if (to.triggers === undefined) problems.push({ path: ['to', 'mode'], message: 'mode event needs triggers: say which changes become events, and their payload' });
  const names = new Map<string, number>();
  (to.triggers ?? []).forEach((t, i) => {
    const first = names.get(t.name);
    if (first !== undefined) problems.push({ path: ['to', 'triggers', String(i), 'name'], message: `duplicate trigger name "${t.name}" (also to/triggers/${first}); names must be unique in a sync` });
    else names.set(t.name, i);
    const c = compileOne(t, i, problems);
    if (c !== undefined) compiled.push(c);
  });
  if (to.matchKey !== undefined) problems.push({ path: ['to', 'matchKey'], message: 'mode event sends events, not records: there is no record to match; remove matchKey' });
  if (to.deletes !== undefined && to.deletes !== 'ignore') problems.push({ path: ['to', 'deletes'], message: 'mode event deletes nothing; a row leaving the model fires the on: delete triggers. Remove deletes' });
  if (sync.mappings !== undefined) problems.push({ path: ['mappings'], message: "mode event builds each event from its trigger's payload; remove mappings" });
  return { compiled, problems };
}

/** Every problem of a sync's `to` block in event mode (or of triggers outside it), for `outflow validate`. */
export function triggerProblems(sync: Pick<SyncConfig, 'to' | 'mappings'>): TriggerProblem[] {
  return compileAll(sync).problems;
}

function changed(fields: readonly string[], before: Row | undefined, after: Row | undefined): boolean {
  if (before === undefined || after === undefined) return true;
  return fields.some((f) => !isDeepStrictEqual(before[f] ?? null, after[f] ?? null));
}

function fires(c: Compiled, change: Change, before: Row | undefined): boolean {
  const { config, when } = c;
  if (config.on !== change.op) return false;
  switch (change.op) {
    case 'insert':
      return when === undefined || when.test(change.after);
    case 'delete':
      return when === undefined || when.test(before);
    case 'update':
      if (config.fields !== undefined && !changed(config.fields, before, change.after)) return false;
      return when === undefined || (when.test(change.after) && !when.test(before));
  }
}

/**
 * Compiles the triggers of an event-mode sync; throws `OUTFLOW_CONFIG_INVALID` naming the
 * sync and the first problem (a file loaded by `loadConfig` has been checked already).
 */
export function compileTriggers(sync: SyncConfig): EventTriggers {
  const { compiled, problems } = compileAll(sync);
  const first = problems[0];
  if (first !== undefined) {
    throw new OutflowError('OUTFLOW_CONFIG_INVALID', `sync "${sync.name}": /${first.path.join('/')}: ${first.message}`);
  }
  const watched = new Set<string>();
  for (const c of compiled) {
    for (const f of [...(c.config.fields ?? []), ...(c.when?.fields ?? []), ...c.payload.beforeFields]) watched.add(f);
  }
  return {
    watched: [...watched].sort(),
    fire(change, before) {
      return compiled
        .filter((c) => fires(c, change, before))
        .map((c) => ({
          trigger: c.config.name,
          object: c.config.object ?? sync.to.object,
          payload: c.payload.render({
            ...(change.after ? { after: change.after } : {}),
            ...(before ? { before } : {}),
            key: change.key,
            trigger: c.config.name,
            change: change.op,
          }),
        }));
    },
  };
}
