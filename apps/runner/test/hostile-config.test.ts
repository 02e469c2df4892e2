import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli, SANDBOX_CONFIG, tempDir, writeCustomers } from './helpers.js';

/**
 * A hostile outflow.yaml never ends in "unexpected error": whatever YAML trick it uses, the
 * real CLI answers `validate` and `run` with exit 2, nothing written, and a message naming
 * the problem — at file:line:col wherever the problem has a place in the file.
 */

const base = SANDBOX_CONFIG;

/** The base config with `from` replaced by `to` (once; fails the test setup if absent). */
function edit(from: string, to: string, text = base): string {
  if (!text.includes(from)) throw new Error(`the base config has no ${JSON.stringify(from)}`);
  return text.replace(from, to);
}

const laughs = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
for (const [i, c] of [...'bcdefghi'].entries()) laughs.push(`${c}: &${c} [${Array(9).fill(`*${'abcdefgh'[i]}`).join(',')}]`);

interface Case {
  name: string;
  /** The file's content; a folder is made instead for `folder`. */
  content: string | Buffer | 'folder';
  /** What stderr must say. */
  says: RegExp;
  args?: string[];
  env?: Record<string, string>;
}

const cases: Case[] = [
  // Anchors, aliases, merges
  { name: 'an alias bomb (billion laughs)', content: `${laughs.join('\n')}\n${base}`, says: /outflow\.yaml:2:\d+ \/: the anchors and aliases of this file expand too far/ },
  { name: 'an alias to no anchor', content: edit('object: customers', 'object: *nope'), says: /outflow\.yaml:8:38 \/syncs\/0\/to\/object: the alias \*nope names no anchor/ },
  {
    name: 'a merge key (<<)',
    content: edit('  warehouse: { connector: duckdb }', '  base: &b { connector: duckdb }\n  warehouse: { <<: *b }'),
    says: /outflow\.yaml:4:16 \/connections\/warehouse: merge keys \(<<\) are not supported/,
  },
  { name: 'a duplicate key', content: `${base}version: 1\n`, says: /outflow\.yaml:9:1 Map keys must be unique/ },
  // Tags
  { name: 'a !!js/function tag', content: edit('object: customers', 'object: !!js/function "function () { return 1 }"'), says: /outflow\.yaml:8:38 \/syncs\/0\/to\/object: the tag !!js\/function is not supported/ },
  { name: 'a !!binary tag', content: edit('object: customers', 'object: !!binary aGVsbG8='), says: /:8:38 \/syncs\/0\/to\/object: the tag !!binary is not supported/ },
  { name: 'a custom !tag', content: edit('object: customers', 'object: !include other.yaml'), says: /:8:38 \/syncs\/0\/to\/object: the tag !include is not supported/ },
  { name: 'a !!set tag', content: edit('object: customers', 'object: !!set { a, b }'), says: /the tag !!set is not supported/ },
  { name: 'a YAML 1.1 implicit timestamp', content: `%YAML 1.1\n---\n${edit('object: customers', 'object: 2001-12-14')}`, says: /:10:38 \/syncs\/0\/to\/object: the value is a timestamp value/ },
  { name: 'an unknown directive', content: `%FOO bar\n---\n${base}`, says: /outflow\.yaml:1:1 Unknown directive %FOO/ },
  // Keys
  { name: 'a number as a key', content: edit('  warehouse:', '  123: { connector: duckdb }\n  warehouse:'), says: /outflow\.yaml:3:3 \/connections: a key must be a string, not 123; write it in quotes: "123"/ },
  { name: 'a boolean as a key', content: edit('  warehouse:', '  true: { connector: duckdb }\n  warehouse:'), says: /:3:3 \/connections: a key must be a string, not true/ },
  { name: 'null as a key', content: edit('  warehouse:', '  ~: { connector: duckdb }\n  warehouse:'), says: /:3:3 \/connections: a key must be a string, not ~/ },
  { name: 'a list as a key', content: edit('  warehouse:', '  [1, 2]: { connector: duckdb }\n  warehouse:'), says: /:3:3 \/connections: a key must be a string, not a list or map/ },
  { name: 'a map as a complex key', content: edit('  warehouse:', '  ? { a: 1 }\n  : { connector: duckdb }\n  warehouse:'), says: /:3:5 \/connections: a key must be a string, not a list or map/ },
  { name: 'a __proto__ key at the top', content: `__proto__: { polluted: true }\n${base}`, says: /outflow\.yaml:1:1 \/: "__proto__" cannot be a key/ },
  { name: 'a __proto__ connection', content: edit('  warehouse:', '  __proto__: { connector: duckdb }\n  warehouse:'), says: /:3:3 \/connections: "__proto__" cannot be a key/ },
  {
    name: 'a connection named like an Object method',
    content: edit('from: { connection: warehouse', 'from: { connection: constructor'),
    says: /:7:25 \/syncs\/0\/from\/connection: no connection named "constructor"/,
  },
  // Numbers
  { name: 'an integer too large to be exact', content: `${base}    delivery: { batchSize: 99999999999999999999999999 }\n`, says: /:9:28 \/syncs\/0\/delivery\/batchSize: the value is too large a number to be exact/ },
  { name: 'a number that overflows to infinity', content: `${base}    delivery: { batchSize: 1e400 }\n`, says: /:9:28 \/syncs\/0\/delivery\/batchSize: the value is not a finite number \(1e400\)/ },
  { name: 'a version of .inf', content: edit('version: 1', 'version: .inf'), says: /outflow\.yaml:1:10 \/version: the value is not a finite number \(\.inf\)/ },
  { name: 'a version of 400 digits', content: edit('version: 1', `version: 1${'0'.repeat(400)}`), says: /outflow\.yaml:1:10 \/version: the value is not a finite number/ },
  { name: 'a !!int beyond 2^53', content: `${base}    delivery: { batchSize: !!int 123456789012345678901234567890 }\n`, says: /too large a number to be exact/ },
  // Nesting and documents
  { name: 'flow nesting thousands deep', content: edit('object: customers', `object: ${'['.repeat(5000)}${']'.repeat(5000)}`), says: /outflow\.yaml:8:\d+ the file is nested too deeply to read/ },
  {
    name: 'block nesting 100 levels deep',
    content: `${base}    mappings:\n${Array.from({ length: 100 }, (_, i) => `${'  '.repeat(i + 3)}k${i}:`).join('\n')} x\n`,
    says: /\/syncs\/0\/mappings\/k0\/k1\/.*: is nested more than 64 levels deep/,
  },
  { name: 'a stream of several documents', content: `${base}---\n${base}`, says: /outflow\.yaml:9:1 the file holds more than one YAML document/ },
  // Bytes and characters
  { name: 'a byte-order mark before an error', content: `\uFEFF${edit('version: 1', 'version: 2')}`, says: /outflow\.yaml:1:10 \/version: must be 1 \(got 2\)/ },
  { name: 'tabs as indentation', content: edit('  warehouse:', '\twarehouse:'), says: /outflow\.yaml:3:1 Tabs are not allowed as indentation/ },
  { name: 'a NUL byte', content: edit('name: customers', 'name: cust\u0000omers'), says: /outflow\.yaml:6:15 contains the control character U\+0000 \(NUL\), which YAML does not allow/ },
  { name: 'a BEL byte', content: edit('object: customers', 'object: cust\u0007omers'), says: /outflow\.yaml:8:42 contains the control character U\+0007 \(BEL\)/ },
  { name: 'a NUL written as an escape', content: edit('object: customers', 'object: "cust\\0omers"'), says: /:8:38 \/syncs\/0\/to\/object: the value contains a NUL character/ },
  { name: 'an unpaired surrogate escape', content: edit('object: customers', 'object: "\\uD800"'), says: /:8:38 \/syncs\/0\/to\/object: the value contains an invalid Unicode character/ },
  {
    name: 'invalid UTF-8',
    content: Buffer.concat([Buffer.from(base.slice(0, base.indexOf('omers }'))), Buffer.from([0xff, 0xfe]), Buffer.from(base.slice(base.indexOf('omers }')))]),
    says: /outflow\.yaml:8:42 is not valid UTF-8 \(byte 0xFF\); save the file as UTF-8/,
  },
  { name: 'an unterminated quote', content: edit('object: customers', 'object: "customers'), says: /outflow\.yaml:\d+:\d+ Missing closing "quote/ },
  // What the file holds
  { name: 'an empty file', content: '', says: /outflow\.yaml:1:1 \/: must hold a map of version: 1, connections and syncs, not nothing \(the file is empty, or null\)/ },
  { name: 'only comments', content: '# nothing here\n', says: /\/: must hold a map of version: 1, connections and syncs, not nothing/ },
  { name: 'null', content: 'null\n', says: /outflow\.yaml:1:1 \/: must hold a map .*, not nothing/ },
  { name: 'a top-level list', content: '- version: 1\n- syncs: []\n', says: /outflow\.yaml:1:1 \/: must hold a map of version: 1, connections and syncs, not a list/ },
  { name: 'a top-level scalar', content: 'hello\n', says: /outflow\.yaml:1:1 \/: must hold a map of version: 1, connections and syncs, not a string \("hello"\)/ },
  { name: 'syncs as a number', content: 'version: 1\nconnections: {}\nsyncs: 5\n', says: /outflow\.yaml:3:8 \/syncs: must be a list \(got 5\)/ },
  { name: 'a folder instead of a file', content: 'folder', says: /OUTFLOW_CONFIG_NOT_FOUND: configuration file .*outflow\.yaml is a folder, not a file/ },
  { name: 'a device instead of a file', content: base, args: ['-c', '/dev/zero'], says: /configuration file \/dev\/zero is not a regular file/ },
  { name: 'a file of 11 MB', content: `${base}# ${'x'.repeat(11 * 1024 * 1024)}\n`, says: /outflow\.yaml is 11\.0 MB; a configuration file is at most 10 MB/ },
  { name: 'thousands of problems', content: `${base}${Array.from({ length: 2000 }, (_, i) => `  - name: s${i}\n    bogus: 1\n`).join('')}`, says: /has 6000 problems:[\s\S]*… and 5950 more/ },
  // Values and environment substitution
  { name: 'an environment variable that makes a value invalid', content: edit('version: 1', 'version: "${env:OUTFLOW_TEST_VERSION}"'), env: { OUTFLOW_TEST_VERSION: '2' }, says: /outflow\.yaml:1:10 \/version: must be 1 \(got "2"\)/ },
  { name: 'an environment variable that is empty', content: edit('object: customers', 'object: "${env:OUTFLOW_TEST_EMPTY}"'), env: { OUTFLOW_TEST_EMPTY: '' }, says: /:8:38 \/syncs\/0\/to\/object: must not be empty/ },
  { name: 'an environment variable that is not set', content: edit('object: customers', 'object: "${env:OUTFLOW_TEST_UNSET}"'), says: /:8:38 \/syncs\/0\/to\/object: environment variable OUTFLOW_TEST_UNSET is not set/ },
  { name: 'a malformed environment reference', content: edit('object: customers', 'object: "${env:1BAD}"'), says: /:8:38 \/syncs\/0\/to\/object: "\$\{env:1BAD\}" is not a valid environment reference/ },
  { name: 'a schedule longer than a timer can wait', content: `${base}    schedule: { every: 99999999999999999999d }\n`, says: /:9:24 \/syncs\/0\/schedule\/every: must be more than 0 and at most 24d/ },
  { name: 'a schedule of 0s', content: `${base}    schedule: { every: 0s }\n`, says: /\/syncs\/0\/schedule\/every: must be more than 0 and at most 24d \(got "0s"\)/ },
  { name: 'a state folder that is a file', content: `${base}state: { dir: data/customers.csv }\n`, says: /:9:15 \/state\/dir: .*customers\.csv is a file, not a folder/ },
  { name: 'a state folder inside a file', content: `${base}state: { dir: /dev/null/outflow }\n`, says: /:9:15 \/state\/dir: \/dev\/null\/outflow cannot be a folder: \/dev\/null is a file/ },
  { name: 'failWhen with a share above 100', content: `${base}    failWhen: { rejectedPct: 150 }\n`, says: /:9:30 \/syncs\/0\/failWhen\/rejectedPct: must be at most 100 \(got 150\)/ },
];

describe.concurrent('a hostile outflow.yaml is a config error (exit 2), never "unexpected error"', () => {
  for (const c of cases) {
    it(c.name, async () => {
      const dir = tempDir('outflow-hostile-');
      writeCustomers(dir, 2);
      if (c.content === 'folder') mkdirSync(join(dir, 'outflow.yaml'));
      else writeFileSync(join(dir, 'outflow.yaml'), c.content);
      for (const command of ['validate', 'run']) {
        const r = await runCli([...(c.args ?? []), command], { cwd: dir, ...(c.env ? { env: c.env } : {}) });
        expect(r.code, `${command}: ${r.stderr}`).toBe(2);
        expect(r.stderr).toMatch(/^error OUTFLOW_CONFIG_(INVALID|PARSE|NOT_FOUND): /m);
        expect(r.stderr).toMatch(c.says);
        expect(r.stderr).not.toMatch(/unexpected error|Warning:/);
        expect(existsSync(join(dir, '.outflow')), 'nothing is written').toBe(false);
      }
    });
  }

  it('a byte-order mark alone is fine: the file is valid', async () => {
    const dir = tempDir('outflow-hostile-');
    writeFileSync(join(dir, 'outflow.yaml'), `\uFEFF${base}`);
    const r = await runCli(['validate'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('is valid: 2 connections, 1 syncs');
  });
});
