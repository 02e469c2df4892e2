import { describe, expect, it } from 'vitest';
import { httpRefusal, ifFound, OutflowError, refusedWith } from '../src/index.js';

const refusal = (status: number) => httpRefusal({ service: 'Acme', what: 'a read', status, credential: 'token' });

describe('refusedWith', () => {
  it('tells an answer with one of the statuses from any other failure', () => {
    expect(refusedWith(refusal(404), 404)).toBe(true);
    expect(refusedWith(refusal(403), 401, 403)).toBe(true);
    expect(refusedWith(refusal(409), 404)).toBe(false);
    expect(refusedWith(new OutflowError('OUTFLOW_DESTINATION', 'no answer', { retryable: true }), 404)).toBe(false);
    expect(refusedWith(Object.assign(new Error('plain'), { status: 404 }), 404)).toBe(false);
  });
});

describe('ifFound', () => {
  it('resolves a 404 as undefined and passes a value through', async () => {
    await expect(ifFound(Promise.reject(refusal(404)))).resolves.toBeUndefined();
    await expect(ifFound(Promise.resolve({ id: '1' }))).resolves.toEqual({ id: '1' });
  });

  it('rejects with any other failure as it was', async () => {
    const conflict = refusal(409);
    await expect(ifFound(Promise.reject(conflict))).rejects.toBe(conflict);
    await expect(ifFound(Promise.reject(refusal(503)))).rejects.toMatchObject({ retryable: true });
  });
});
