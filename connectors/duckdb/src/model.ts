import { resolve } from 'node:path';
import { OutflowError, type Model } from '@outflow/core';

/** A validated model: the query that reads it and how to name it in messages. */
export interface ModelQuery {
  /** A single SELECT statement without a trailing semicolon. */
  sql: string;
  /** e.g. `table "main.users"`, for error messages. */
  label: string;
  /** A DESCRIBE statement listing the model's columns without reading rows. */
  describe: string;
}

const KINDS = ['table', 'sql', 'file'] as const;

/** Validates `model` (exactly one of table, sql, file) and builds the query that reads it. */
export function modelQuery(model: Model): ModelQuery {
  const given = KINDS.filter((k) => model[k] !== undefined);
  if (given.length !== 1) {
    throw new OutflowError(
      'OUTFLOW_CONFIG_INVALID',
      `a DuckDB model needs exactly one of \`table\`, \`sql\` or \`file\`, but ${given.length === 0 ? 'none was' : `${given.map((k) => `\`${k}\``).join(' and ')} were`} given`,
      { details: { given } },
    );
  }
  const kind = given[0]!;
  const value = model[kind];
  if (typeof value !== 'string' || value.trim() === '') {
    throw new OutflowError('OUTFLOW_CONFIG_INVALID', `the DuckDB model's \`${kind}\` must be a non-empty string`, {
      details: { [kind]: value },
    });
  }
  switch (kind) {
    case 'table': {
      const relation = quoteQualifiedName(value);
      const sql = `SELECT * FROM ${relation}`;
      return { sql, label: `table "${value}"`, describe: `DESCRIBE ${sql}` };
    }
    case 'sql': {
      const sql = value.trim().replace(/[;\s]+$/, '');
      return { sql, label: `sql "${abbreviate(sql)}"`, describe: `DESCRIBE SELECT * FROM (${sql}\n) AS outflow_model` };
    }
    case 'file': {
      const sql = `SELECT * FROM ${fileReader(value)}`;
      return { sql, label: `file "${value}"`, describe: `DESCRIBE ${sql}` };
    }
  }
}

function abbreviate(sql: string): string {
  const flat = sql.replace(/\s+/g, ' ');
  return flat.length > 80 ? `${flat.slice(0, 77)}...` : flat;
}

function sqlString(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

function fileReader(file: string): string {
  const path = sqlString(resolve(process.cwd(), file));
  const lower = file.toLowerCase();
  if (lower.endsWith('.parquet')) return `read_parquet(${path})`;
  if (lower.endsWith('.csv') || lower.endsWith('.csv.gz')) return `read_csv_auto(${path})`;
  if (lower.endsWith('.tsv') || lower.endsWith('.tsv.gz')) return `read_csv_auto(${path}, delim = '\t')`;
  throw new OutflowError(
    'OUTFLOW_CONFIG_INVALID',
    `the DuckDB model's file "${file}" must end in .csv, .csv.gz, .tsv, .tsv.gz or .parquet`,
    { details: { file } },
  );
}

/**
 * Quotes a possibly qualified name (`table`, `schema.table`, `catalog.schema.table`). Parts
 * already in double quotes are kept as written, so `"my.schema"."t"` names one schema.
 */
export function quoteQualifiedName(name: string): string {
  const parts: string[] = [];
  let i = 0;
  const invalid = (why: string) =>
    new OutflowError('OUTFLOW_CONFIG_INVALID', `the DuckDB model's table "${name}" is not a valid name: ${why}`, {
      details: { table: name },
    });
  for (;;) {
    while (name[i] === ' ') i++;
    let part = '';
    if (name[i] === '"') {
      i++;
      for (;;) {
        if (i >= name.length) throw invalid('a double quote is not closed');
        if (name[i] === '"') {
          if (name[i + 1] !== '"') break;
          i++;
        }
        part += name[i++];
      }
      i++;
      while (name[i] === ' ') i++;
    } else {
      const end = name.indexOf('.', i);
      part = (end === -1 ? name.slice(i) : name.slice(i, end)).trim();
      if (part.includes('"')) throw invalid('a double quote appears inside an unquoted part');
      i = end === -1 ? name.length : end;
    }
    if (part === '') throw invalid('a part of the name is empty');
    parts.push(part);
    if (i >= name.length) break;
    if (name[i] !== '.') throw invalid('quoted parts must be separated by dots');
    i++;
  }
  if (parts.length > 3) throw invalid('at most catalog.schema.table');
  return parts.map((p) => `"${p.replace(/"/g, '""')}"`).join('.');
}
