import { describe, expect, it } from 'vitest';
import { fieldInfo, singleMatchKey } from '../src/index.js';

describe('fieldInfo', () => {
  it('lists only the flags that hold and the options given', () => {
    expect(fieldInfo('email', 'string', { readOnly: false, unique: true, required: false })).toEqual({ name: 'email', type: 'string', unique: true });
    expect(fieldInfo('plan', 'enumeration', { options: ['free', 'pro'], readOnly: true })).toEqual({ name: 'plan', type: 'enumeration', readOnly: true, options: ['free', 'pro'] });
    expect(fieldInfo('Name', 'string(80)', { required: true, options: undefined })).toEqual({ name: 'Name', type: 'string(80)', required: true });
    expect(fieldInfo('notes', 'string')).toEqual({ name: 'notes', type: 'string' });
  });

  it('keeps options given empty, and a copy of them', () => {
    const options = ['a'];
    const field = fieldInfo('tier', 'enumeration', { options });
    options.push('b');
    expect(field.options).toEqual(['a']);
    expect(fieldInfo('tier', 'enumeration', { options: [] }).options).toEqual([]);
  });
});

describe('singleMatchKey', () => {
  it('answers the one field a match names, with its value', () => {
    expect(singleMatchKey({ email: 'a@example.com' }, { service: 'Acme' })).toEqual({ name: 'email', value: 'a@example.com' });
    expect(singleMatchKey({ external_id: 7 }, { service: 'Acme', allowed: ['external_id', 'email'] })).toEqual({ name: 'external_id', value: 7 });
  });

  it('gives the reason to reject a match naming none or several fields, in the vendor\'s word for one', () => {
    expect(singleMatchKey({}, { service: 'Acme', noun: 'property' })).toEqual({ reason: 'Acme matches a record by one property; this match key names none' });
    expect(singleMatchKey({ email: 'a@example.com', name: 'Ada' }, { service: 'Acme' })).toEqual({ reason: 'Acme matches a record by one field; this match key names email, name' });
  });

  it('refuses a field that is not among the allowed ones, naming them', () => {
    expect(singleMatchKey({ phone: '+1 555' }, { service: 'Acme', allowed: ['external_id', 'email'] })).toEqual({
      reason: 'Acme matches a record by one of external_id, email; this match key names phone',
    });
  });
});
