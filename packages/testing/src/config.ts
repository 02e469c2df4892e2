import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { OutflowError, type TSchema } from '@outflow/core';

// ajv-formats is CommonJS: under NodeNext its default import is the module object.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (ajv: Ajv) => Ajv;

const validators = new WeakMap<object, ValidateFunction>();

/** The ajv validator Outflow uses for connection config: all errors, defaults applied, `secret` known. */
export function configValidator(schema: TSchema | Record<string, unknown>): ValidateFunction {
  let validate = validators.get(schema);
  if (validate === undefined) {
    const ajv = new Ajv({ strict: false, allErrors: true, useDefaults: true });
    addFormats(ajv);
    ajv.addKeyword({ keyword: 'secret', schemaType: 'boolean' });
    validate = ajv.compile(schema);
    validators.set(schema, validate);
  }
  return validate;
}

/** One config validation problem, with the JSON pointer of the offending value. */
export interface ConfigProblem {
  path: string;
  message: string;
  keyword: string;
  params: Record<string, unknown>;
}

function toProblem(e: ErrorObject): ConfigProblem {
  return { path: e.instancePath === '' ? '/' : e.instancePath, message: e.message ?? e.keyword, keyword: e.keyword, params: e.params };
}

/**
 * Validates a copy of `config` against a connector's config schema and returns the copy
 * (with schema defaults applied) and every problem found; `config` itself is not changed.
 */
export function checkConfig<C>(schema: TSchema | Record<string, unknown>, config: unknown): { config: C; problems: ConfigProblem[] } {
  const copy = structuredClone(config);
  const validate = configValidator(schema);
  const ok = validate(copy);
  return { config: copy as C, problems: ok ? [] : (validate.errors ?? []).map(toProblem) };
}

/**
 * Returns `config` validated against `schema` with defaults applied, or throws
 * `OUTFLOW_CONFIG_INVALID` listing every problem with its path.
 */
export function validateConfig<C>(schema: TSchema | Record<string, unknown>, config: unknown): C {
  const { config: checked, problems } = checkConfig<C>(schema, config);
  if (problems.length > 0) {
    const list = problems.map((p) => `${p.path} ${p.message}`).join('; ');
    throw new OutflowError('OUTFLOW_CONFIG_INVALID', `test config does not match the connector's schema: ${list}`, {
      details: { problems: problems.map((p) => ({ path: p.path, message: p.message })) },
    });
  }
  return checked;
}
