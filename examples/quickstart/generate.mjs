#!/usr/bin/env node
// Writes data/customers.csv: 10,000 deterministic customers, a few with invalid emails.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CUSTOMERS = 10_000;
export const INVALID_IDS = [17, 404, 1234, 2500, 5555, 7777, 9999];

export function generate(file = join(dirname(fileURLToPath(import.meta.url)), 'data', 'customers.csv'), { force = false } = {}) {
  if (existsSync(file) && !force) return { file, created: false };
  let seed = 0x5eed;
  const rand = () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const pick = (list) => list[Math.floor(rand() * list.length)];
  const first = ['Ada', 'Grace', 'Alan', 'Edsger', 'Barbara', 'Donald', 'Margaret', 'Ken', 'Radia', 'Linus', 'Frances', 'John'];
  const last = ['Lovelace', 'Hopper', 'Turing', 'Dijkstra', 'Liskov', 'Knuth', 'Hamilton', 'Thompson', 'Perlman', 'Torvalds', 'Allen', 'Backus'];
  const plans = ['free', 'starter', 'pro', 'enterprise'];
  const badEmails = ['not-an-email', 'missing-at.example.com', 'two@@example.com', 'trailing@', '@no-local.example.com', 'spaces in@example.com', 'no-domain@example'];
  const lines = ['id,email,first_name,last_name,plan,lifetime_value,signed_up_at'];
  const start = Date.UTC(2022, 0, 1);
  for (let id = 1; id <= CUSTOMERS; id++) {
    const f = pick(first);
    const l = pick(last);
    const bad = INVALID_IDS.indexOf(id);
    const email = bad >= 0 ? badEmails[bad] : `${f}.${l}.${id}@example.com`.toLowerCase();
    const value = (Math.floor(rand() * 500_000) / 100).toFixed(2);
    const signed = new Date(start + Math.floor(rand() * 3 * 365 * 86_400_000)).toISOString();
    lines.push([id, JSON.stringify(email), f, l, pick(plans), value, signed].join(','));
  }
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, lines.join('\n') + '\n');
  return { file, created: true };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { file, created } = generate(undefined, { force: process.argv.includes('--force') });
  console.log(created ? `wrote ${CUSTOMERS} customers to ${file}` : `${file} exists (use --force to regenerate)`);
}
