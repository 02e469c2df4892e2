/** vitest setup file: installs the network guard and fails any test that tripped it. */
import { afterEach, expect } from 'vitest';
import { violations } from './network-guard.js';

afterEach(() => {
  const seen = violations.splice(0);
  expect(seen, 'non-loopback network traffic was attempted').toEqual([]);
});
