/**
 * HubSpot as a chaos destination, in the emulator, read back two ways: the records it holds
 * now, and its log of every write applied through the API (`stats().writes`), where a record
 * created twice shows as two creates. Two objects, because they differ when a write is in
 * doubt:
 *
 * - `contacts`, upserted by email (`item<id>@example.com`, as the crash matrix's HubSpot sink
 *   has it). Email is unique in HubSpot, which refuses a second contact with one email, so
 *   the connector declares idempotency `match` and the engine sends writes in doubt again; a
 *   duplicate can only show as a contact created again after an archive.
 * - `items`, a custom object with no unique property (`item_id`, `item_name`, `item_score`).
 *   A re-sent create makes a second record, so the connector declares `none`; it has no
 *   `lookup`, so the engine parks writes in doubt as "outcome unknown" instead.
 *
 * Unlike the crash matrix's sink, this one also tells the history of one id in the write
 * log, for the report's examples.
 */
import { start, type HubSpotEmulator } from '@outflow/connector-hubspot/emulator';
import type { Rows, Sink } from '../crash/systems.js';

export type HubSpotObject = 'contacts' | 'items';

export interface HistorySink extends Sink {
  /** What the destination's write log holds for one id, in order. */
  history(key: string): Promise<string[]>;
}

const SHAPE = {
  contacts: { id: 'email', name: 'firstname', score: 'total_revenue' },
  items: { id: 'item_id', name: 'item_name', score: 'item_score' },
} as const;

export async function hubspotSink(object: HubSpotObject): Promise<HistorySink> {
  const hubspot: HubSpotEmulator = await start({
    customObjects:
      object === 'items'
        ? [{ name: 'items', properties: [{ name: 'item_id', type: 'number' }, { name: 'item_name', type: 'string' }, { name: 'item_score', type: 'number' }], primaryDisplayProperty: 'item_name' }]
        : [],
  });
  const shape = SHAPE[object];
  /** The model id a record stands for; a record of none is keyed by its HubSpot id. */
  const keyOf = (properties: Record<string, string> | undefined, hubspotId: string): string => {
    const v = properties?.[shape.id] ?? '';
    const id = object === 'contacts' ? /^item(\d+)@example\.com$/.exec(v)?.[1] : v === '' ? undefined : String(Number(v));
    return id ?? `?hubspot-${hubspotId}`;
  };
  const log = () => hubspot.stats().writes.filter((w) => w.object === object);
  /** HubSpot id → model id, from the creates in the log (updates and archives name only the HubSpot id). */
  const owners = () => new Map(log().flatMap((w) => (w.op === 'create' ? [[w.id, keyOf(w.properties, w.id)] as const] : [])));
  return {
    kind: 'hubspot',
    connection: `{ connector: hubspot, config: { accessToken: "\${env:HUBSPOT_TOKEN}", basePath: "${hubspot.url}" } }`,
    to: (c) =>
      object === 'contacts'
        ? `{ connection: dst, object: contacts, mode: upsert, deletes: delete, matchKey: { email: ${c.email} } }`
        : '{ connection: dst, object: items, mode: upsert, deletes: delete }',
    mappings: (c) =>
      object === 'contacts' ? `{ firstname: ${c.name}, total_revenue: ${c.score} }` : `{ item_id: ${c.id}, item_name: ${c.name}, item_score: ${c.score} }`,
    env: { HUBSPOT_TOKEN: hubspot.config.accessToken },
    async held() {
      const out: Rows = new Map();
      for (const r of hubspot.records(object)) {
        const key = keyOf(r.properties, r.id);
        // A second record of one id is a duplicate; it stays visible as an extra key.
        out.set(out.has(key) ? `${key}#dup-hubspot-${r.id}` : key, { name: r.properties[shape.name] ?? '', score: Number(r.properties[shape.score]) });
      }
      return out;
    },
    async creates() {
      const n = new Map<string, number>();
      for (const w of log()) if (w.op === 'create') n.set(keyOf(w.properties, w.id), (n.get(keyOf(w.properties, w.id)) ?? 0) + 1);
      return n;
    },
    async writes() {
      return log().length;
    },
    async history(key) {
      const owner = owners();
      return log()
        .filter((w) => owner.get(w.id) === key)
        .map((w) => `${w.op} #${w.id}${w.op === 'create' ? ` ${w.properties?.[shape.name]}/${w.properties?.[shape.score]}` : ''}`);
    },
    close: () => hubspot.stop(),
  };
}
