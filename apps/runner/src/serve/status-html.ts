/**
 * The status page's HTML: small builders that escape every value they are given. Values
 * reach the page as text only — a reason holding `<script>` shows those characters — and
 * pass through `redact()` first, so a registered secret never appears even if a caller let
 * one through.
 */
import { redact, type RowError, type RunRecord } from '@outflow/core';
import type { SyncStatus } from './view.js';

/** Markup that is already safe: built by these helpers, never by concatenating raw values. */
export interface Html {
  readonly html: string;
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** A value as HTML text (redacted, then escaped); `Html` is passed through. */
function text(value: string | number | Html | undefined): string {
  if (value === undefined) return '';
  if (typeof value === 'object') return value.html;
  return redact(String(value)).replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

/** A template tag: literal parts are markup, interpolated values are escaped (arrays joined). */
export function html(strings: TemplateStringsArray, ...values: (string | number | Html | undefined | Html[])[]): Html {
  let out = strings[0]!;
  values.forEach((v, i) => {
    out += Array.isArray(v) ? v.map((h) => h.html).join('') : text(v);
    out += strings[i + 1]!;
  });
  return { html: out };
}

/** The path of a sync's page (`/syncs/<name>`), and of its actions below it. */
export function syncPath(sync: string, action?: string): string {
  return `/syncs/${encodeURIComponent(sync)}${action ? `/${action}` : ''}`;
}

const STYLE = `body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem;color:#1b1b1b}
table{border-collapse:collapse;margin:.5rem 0 1.5rem}th,td{border-bottom:1px solid #ddd;padding:.3rem .6rem;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.n{text-align:right;font-variant-numeric:tabular-nums}
.state-running{color:#0a6}.state-failed,.status-failed,.status-aborted{color:#c00}.state-paused{color:#a60}
.notice{background:#eef6ff;border:1px solid #9bc;padding:.5rem;margin:.5rem 0}form{display:inline;margin-right:.3rem}
code{white-space:pre-wrap;word-break:break-all}`;

/** A whole page: title, an optional notice (the outcome of the last action), and the body. */
export function page(title: string, body: Html, notice?: string): string {
  return `<!doctype html>\n${
    html`<html lang="en"><head><meta charset="utf-8"><title>${title} · outflow serve</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>${{ html: STYLE }}</style></head>
<body>${notice === undefined ? '' : html`<p class="notice" role="status">${notice}</p>`}${body}</body></html>`.html
  }\n`;
}

/** A one-button form POSTing to `action` (with hidden fields), so it works without JavaScript. */
function button(action: string, label: string, fields: Record<string, string> = {}): Html {
  const hidden = Object.entries(fields).map(([name, value]) => html`<input type="hidden" name="${name}" value="${value}">`);
  return html`<form method="post" action="${action}">${hidden}<button type="submit">${label}</button></form>`;
}

/** "1.2s", "3m 20s", "2h 5m": a duration for people. */
function duration(ms: number): string {
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

/** An ISO time to the second: "2026-12-02 18:40:00Z". */
function stamp(iso: string): string {
  return iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

/** An ISO time with how far it is from `now`: "2026-12-02 18:40:00Z (in 4m 10s)". */
function when(iso: string, now: number): string {
  const t = Date.parse(iso);
  const shown = stamp(iso);
  if (Number.isNaN(t)) return shown;
  const d = t - now;
  return `${shown} (${d >= 0 ? `in ${duration(d)}` : `${duration(-d)} ago`})`;
}

/** Run now (diff syncs), and Pause or Resume; `fields` go with each form (where to come back to). */
function actions(s: SyncStatus, fields: Record<string, string> = {}): Html[] {
  return [
    ...(s.capture === 'diff' ? [button(syncPath(s.name, 'trigger'), 'Run now', fields)] : []),
    s.state === 'paused' ? button(syncPath(s.name, 'resume'), 'Resume', fields) : button(syncPath(s.name, 'pause'), 'Pause', fields),
  ];
}

function lastRunCell(run: RunRecord | undefined, now: number): Html {
  if (!run) return html`never`;
  return html`<span class="status-${run.status}">${run.status}</span> ${when(run.startedAt, now)}${
    run.durationMs === undefined ? '' : ` in ${duration(run.durationMs)}`
  }`;
}

/** The overview: every sync with its state, last and next run, lag and parked rows. */
export function overview(syncs: SyncStatus[], now: number): Html {
  const rows = syncs.map((s) => {
    const path = syncPath(s.name);
    return html`<tr data-sync="${s.name}"><td><a href="${path}">${s.name}</a></td><td>${s.capture}</td>
<td class="state-${s.state}">${s.state}${s.heldBy === undefined ? '' : html` (held by ${s.heldBy})`}</td>
<td>${lastRunCell(s.lastRun, now)}</td><td>${s.nextRunAt === undefined ? '—' : when(s.nextRunAt, now)}</td>
<td class="n">${s.lagMs === undefined ? '—' : duration(s.lagMs)}</td>
<td class="n">${s.parked + s.retrying === 0 ? '0' : html`<a href="${path}#parked">${s.parked}</a>${s.retrying ? ` (+${s.retrying} retrying)` : ''}`}</td>
<td>${actions(s, { back: '/' })}</td></tr>`;
  });
  return html`<h1>Syncs</h1>${
    syncs.length === 0
      ? html`<p>No syncs in the configuration.</p>`
      : html`<table><thead><tr><th>sync</th><th>capture</th><th>state</th><th>last run</th><th>next run</th><th>lag</th><th>parked rows</th><th></th></tr></thead>
<tbody>${rows}</tbody></table>`
  }`;
}

function runsTable(runs: RunRecord[], now: number): Html {
  if (!runs.length) return html`<p>No runs yet.</p>`;
  const rows = runs.map(
    (r) => html`<tr data-run="${r.id}"><td class="n">${r.id}</td><td class="status-${r.status}">${r.status}</td><td>${r.capture}</td>
<td>${when(r.startedAt, now)}</td><td class="n">${r.durationMs === undefined ? '' : duration(r.durationMs)}</td>
<td class="n">${r.inserted}</td><td class="n">${r.updated}</td><td class="n">${r.deleted}</td><td class="n">${r.rejected}</td><td class="n">${r.skipped}</td>
<td><code>${r.error ?? ''}</code></td></tr>`,
  );
  return html`<table><thead><tr><th>run</th><th>status</th><th>capture</th><th>started</th><th>duration</th><th>inserted</th><th>updated</th><th>deleted</th><th>rejected</th><th>skipped</th><th>error</th></tr></thead>
<tbody>${rows}</tbody></table>`;
}

/** The parked rows listed (the first ones, when there are more than the page lists), of `total`. */
function parkedTable(sync: string, parked: RowError[], total: number): Html {
  if (!parked.length) return html`<p>No parked rows.</p>`;
  const retry = syncPath(sync, 'retry');
  const rows = parked.map(
    (p) => html`<tr data-key="${p.key}"><td><code>${p.key}</code></td><td>${p.op}</td><td><code class="reason">${p.reason}</code></td>
<td class="n">${p.attempts}</td><td>${stamp(p.firstSeen)}</td><td>${stamp(p.lastSeen)}</td><td>${button(retry, 'Retry', { key: p.key })}</td></tr>`,
  );
  const all = Math.max(total, parked.length);
  return html`<p>Each parked row waits until its row changes in the model or it is sent again. ${button(retry, `Retry all ${all} parked row${all === 1 ? '' : 's'}`)}${
    all > parked.length ? ` (the first ${parked.length} are listed)` : ''
  }</p>
<table><thead><tr><th>key</th><th>op</th><th>reason</th><th>attempts</th><th>first seen</th><th>last seen</th><th></th></tr></thead>
<tbody>${rows}</tbody></table>`;
}

/** One sync: its state and actions, its parked rows with a retry action each, and its run history. */
export function syncDetail(s: SyncStatus, runs: RunRecord[], parked: RowError[], now: number): Html {
  return html`<p><a href="/">← all syncs</a></p><h1>${s.name}</h1>
<p>${s.capture} sync, <span class="state-${s.state}">${s.state}</span>${s.heldBy === undefined ? '' : html`, held by ${s.heldBy}`}.
Next run: ${s.nextRunAt === undefined ? '—' : when(s.nextRunAt, now)}. ${s.lagMs === undefined ? '' : `Lag: ${duration(s.lagMs)}.`}
${actions(s)}</p>
<h2 id="parked">Parked rows (${s.parked})</h2>${parkedTable(s.name, parked, s.parked)}${
    s.retrying ? html`<p>${s.retrying} more row${s.retrying === 1 ? '' : 's'} failed with a retryable error and will be sent again by the next run.</p>` : ''
  }
<h2 id="runs">Runs</h2>${runsTable(runs, now)}`;
}
