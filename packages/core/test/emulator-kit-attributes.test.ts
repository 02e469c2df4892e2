import { checkValues, fitsType, type Attribute } from '@outflow/core/emulator-kit';
import { describe, expect, it } from 'vitest';

const attributes: Attribute[] = [
  { name: 'plan', type: 'string', options: ['free', 'pro'] },
  { name: 'seats', type: 'integer' },
  { name: 'spend', type: 'float' },
  { name: 'active', type: 'boolean' },
  { name: 'signed_up_at', type: 'date' },
  { name: 'id', type: 'string', readOnly: true },
];
const rules = {
  find: (name: string) => attributes.find((a) => a.name === name),
  problem: (issue: string, name: string) => `${issue}:${name}`,
};

describe('fitsType', () => {
  it('takes JSON values of each type and nothing else', () => {
    expect([fitsType('string', 'a'), fitsType('enumeration', 'a'), fitsType('boolean', false), fitsType('float', 1.5), fitsType('integer', 3), fitsType('date', 1_700_000_000)]).toEqual([true, true, true, true, true, true]);
    expect([fitsType('string', 1), fitsType('boolean', 'true'), fitsType('float', Number.NaN), fitsType('integer', 1.5), fitsType('date', '2024-01-01'), fitsType('number', null)]).toEqual([false, false, false, false, false, false]);
  });
});

describe('checkValues', () => {
  it('keeps values that fit, null included (it clears a value)', () => {
    const values = { plan: 'pro', seats: 3, spend: null, active: true, signed_up_at: 1_700_000_000 };
    expect(checkValues(values, rules)).toEqual({ values });
  });

  it('reports every problem, in order and in the vendor’s terms: unknown, read-only, wrong type, not an option', () => {
    expect(checkValues({ colour: 'blue', id: 'x', seats: 'three', plan: 'platinum', active: true }, rules)).toEqual({ problems: ['unknown:colour', 'read_only:id', 'type:seats', 'option:plan'] });
  });

  it('stops at the first problem when the vendor throws it', () => {
    const throwing = { ...rules, problem: (issue: string, name: string): never => { throw new Error(`${issue}:${name}`); } };
    expect(() => checkValues({ seats: 1.5, plan: 'platinum' }, throwing)).toThrow('type:seats');
  });

  it('takes attributes of a vendor’s own shape with its own reading, e.g. values that arrive as text', () => {
    const props = new Map([['amount', { name: 'amount', kind: 'number', locked: false }], ['created', { name: 'created', kind: 'datetime', locked: true }]]);
    const checked = checkValues<{ name: string; kind: string; locked: boolean }, string, number>({ amount: '12.50', created: '2024-01-01' }, {
      find: (name) => props.get(name),
      readOnly: (p) => p.locked,
      read: (_p, raw) => (Number.isNaN(Number(raw)) ? { problem: 'not a number' } : { value: Number(raw) }),
      problem: (issue, name) => `${issue}:${name}`,
    });
    expect(checked).toEqual({ problems: ['read_only:created'] });
    expect(checkValues<{ name: string; kind: string; locked: boolean }, string, number>({ amount: '12.50' }, {
      find: (name) => props.get(name),
      readOnly: (p) => p.locked,
      read: (_p, raw) => ({ value: Number(raw) }),
      problem: (issue) => issue,
    })).toEqual({ values: { amount: 12.5 } });
  });
});
