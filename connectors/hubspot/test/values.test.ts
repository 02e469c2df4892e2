import { coerce, limitsOf, msUntilMidnight, type PropertyInfo } from '@outflow/connector-hubspot';
import { describe, expect, it } from 'vitest';

const prop = (type: string, extra: Partial<PropertyInfo> = {}): PropertyInfo => ({
  name: 'p',
  type,
  fieldType: 'text',
  options: [],
  readOnly: false,
  unique: false,
  ...extra,
});

describe('values in HubSpot formats', () => {
  it('sends dates as YYYY-MM-DD and refuses a time of day HubSpot would refuse', () => {
    expect(coerce(prop('date'), '2024-02-29', 'contacts')).toEqual({ ok: true, value: '2024-02-29' });
    expect(coerce(prop('date'), '2024-02-29T00:00:00Z', 'contacts')).toEqual({ ok: true, value: '2024-02-29' });
    expect(coerce(prop('date'), Date.UTC(2024, 1, 29), 'contacts')).toEqual({ ok: true, value: '2024-02-29' });
    const timed = coerce(prop('date'), '2024-02-29T13:30:00Z', 'contacts');
    expect(timed.ok).toBe(false);
    expect(!timed.ok && timed.reason).toContain('midnight UTC');
    expect(coerce(prop('date'), 'yesterday', 'contacts').ok).toBe(false);
  });

  it('sends datetimes as ISO 8601 in UTC, reading zone-less timestamps as UTC', () => {
    expect(coerce(prop('datetime'), '2023-05-06 07:08:09', 'deals')).toEqual({ ok: true, value: '2023-05-06T07:08:09.000Z' });
    expect(coerce(prop('datetime'), '2023-05-06T07:08:09+02:00', 'deals')).toEqual({ ok: true, value: '2023-05-06T05:08:09.000Z' });
    expect(coerce(prop('datetime'), 0, 'deals')).toEqual({ ok: true, value: '1970-01-01T00:00:00.000Z' });
    expect(coerce(prop('datetime'), 'soon', 'deals').ok).toBe(false);
  });

  it('sends booleans as true/false and numbers as their text, refusing what is neither', () => {
    expect(coerce(prop('bool'), true, 'companies')).toEqual({ ok: true, value: 'true' });
    expect(coerce(prop('bool'), 'FALSE', 'companies')).toEqual({ ok: true, value: 'false' });
    expect(coerce(prop('bool'), 1, 'companies')).toEqual({ ok: true, value: 'true' });
    expect(coerce(prop('bool'), 'maybe', 'companies').ok).toBe(false);
    expect(coerce(prop('number'), 12.5, 'deals')).toEqual({ ok: true, value: '12.5' });
    expect(coerce(prop('number'), ' 7 ', 'deals')).toEqual({ ok: true, value: '7' });
    expect(coerce(prop('number'), 'seven', 'deals').ok).toBe(false);
  });

  it('checks enumeration values against the options, several joined by ; for checkboxes', () => {
    const stage = prop('enumeration', { name: 'lifecyclestage', options: ['lead', 'customer'] });
    expect(coerce(stage, 'lead', 'contacts')).toEqual({ ok: true, value: 'lead' });
    const bad = coerce(stage, 'champion', 'contacts');
    expect(bad).toEqual({ ok: false, reason: 'property "lifecyclestage" of contacts: "champion" is not one of its options (lead, customer)' });
    const multi = prop('enumeration', { fieldType: 'checkbox', options: ['a', 'b', 'c'] });
    expect(coerce(multi, ['a', 'c'], 'tickets')).toEqual({ ok: true, value: 'a;c' });
    expect(coerce(multi, 'a;x', 'tickets').ok).toBe(false);
    expect(coerce(stage, ['lead', 'customer'], 'contacts').ok).toBe(false);
  });

  it('clears a property with an empty string for null', () => {
    expect(coerce(prop('number'), null, 'deals')).toEqual({ ok: true, value: '' });
  });
});

describe('rate limits by tier', () => {
  it('declares the documented per-10-second and daily limits', () => {
    expect(limitsOf({ tier: 'starter' }).map((l) => l.requests)).toEqual([100, 250_000]);
    expect(limitsOf({ tier: 'professional' }).map((l) => l.requests)).toEqual([190, 625_000]);
    expect(limitsOf({ tier: 'enterprise', capacityPacks: 1 }).map((l) => l.requests)).toEqual([250, 2_000_000]);
    const [window, day] = limitsOf({});
    expect(window!.perMs).toBe(10_000);
    expect(day!.perMs).toBe(86_400_000);
  });

  it('knows when the daily limit resets: midnight in the account time zone', () => {
    const noonUtc = Date.UTC(2024, 0, 15, 12, 0, 0);
    expect(msUntilMidnight('UTC', noonUtc)).toBe(12 * 3_600_000);
    expect(msUntilMidnight('America/New_York', noonUtc)).toBe(17 * 3_600_000);
    expect(msUntilMidnight('Asia/Tokyo', noonUtc)).toBe(3 * 3_600_000);
  });
});
