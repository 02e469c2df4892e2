import { RecordTable } from '@outflow/core/emulator-kit';
import { describe, expect, it } from 'vitest';

interface Person {
  id: string;
  role: 'user' | 'lead';
  email: string | null;
  externalId: string | null;
}

/** externalId unique among all, email (without regard to case) among users only. */
const people = () =>
  new RecordTable<Person>({
    externalId: (p) => p.externalId ?? undefined,
    email: (p) => (p.role === 'user' && p.email !== null ? p.email.toLowerCase() : undefined),
  });

const person = (id: string, email: string | null, externalId: string | null = null, role: Person['role'] = 'user'): Person => ({ id, role, email, externalId });

describe('RecordTable', () => {
  it('holds records by id in the order first put; a put with the same id replaces in place', () => {
    const t = people();
    t.put(person('1', 'a@x.com'));
    t.put(person('2', 'b@x.com'));
    t.put(person('1', 'c@x.com'));
    expect(t.all().map((p) => [p.id, p.email])).toEqual([['1', 'c@x.com'], ['2', 'b@x.com']]);
    expect(t.size).toBe(2);
  });

  it('names the record that already holds a unique value, by the index rule, and not the record itself', () => {
    const t = people();
    t.put(person('1', 'Ada@x.com', 'u1'));
    t.put(person('2', 'lead@x.com', null, 'lead'));
    expect(t.clash(person('9', 'ada@X.com'))).toEqual({ index: 'email', id: '1' });
    expect(t.clash(person('9', 'other@x.com', 'u1'))).toEqual({ index: 'externalId', id: '1' });
    expect(t.clash(person('1', 'ada@x.com', 'u1'))).toBeUndefined();
    // Leads' emails are outside the email index.
    expect(t.clash(person('9', 'lead@x.com'))).toBeUndefined();
    expect(t.byKey('email', 'ada@x.com')?.id).toBe('1');
  });

  it('frees a value once its holder changes it or is deleted', () => {
    const t = people();
    t.put(person('1', 'a@x.com'));
    t.put(person('1', 'b@x.com'));
    expect(t.clash(person('2', 'a@x.com'))).toBeUndefined();
    expect(t.clash(person('2', 'b@x.com'))?.id).toBe('1');
    t.delete('1');
    expect(t.clash(person('2', 'b@x.com'))).toBeUndefined();
    expect(t.delete('1')).toBeUndefined();
  });

  it('keeps an archived record and its unique values, out of the live records', () => {
    const t = people();
    t.put(person('1', 'a@x.com'));
    t.put(person('2', 'b@x.com'));
    t.setArchived('1', true);
    expect(t.live().map((p) => p.id)).toEqual(['2']);
    expect(t.isArchived('1')).toBe(true);
    expect(t.clash(person('3', 'a@x.com'))).toEqual({ index: 'email', id: '1' });
    t.setArchived('1', false);
    expect(t.live().map((p) => p.id)).toEqual(['1', '2']);
    t.setArchived('9', true);
    expect(t.isArchived('9')).toBe(false);
  });

  it('indexes the records already held when a unique index is added later', () => {
    const t = new RecordTable<Person>();
    t.put(person('1', 'a@x.com', 'u1'));
    expect(t.hasIndex('externalId')).toBe(false);
    t.addIndex('externalId', (p) => p.externalId ?? undefined);
    expect(t.indexNames()).toEqual(['externalId']);
    expect(t.byKey('externalId', 'u1')?.id).toBe('1');
  });
});
