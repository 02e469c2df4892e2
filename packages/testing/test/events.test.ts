import { describe, expect, it } from 'vitest';
import { eventAcceptance, eventCheckList, runEventChecks, type CheckReport, type EventDriver } from '../src/index.js';
import { LIMIT, referenceEventDriver, type Bugs, type ReferenceConfig } from './reference-destination.js';

eventAcceptance(referenceEventDriver());

function failures(reports: CheckReport[]): string[] {
  return reports.filter((r) => r.status === 'failed').map((r) => r.message ?? r.id);
}

describe('the event suite passes a correct event destination', () => {
  it('with a maxBatchSize of 1', async () => {
    expect(failures(await runEventChecks(referenceEventDriver({}, { config: { token: 'reference-token-0123456789', batchSize: 1 } })))).toEqual([]);
  });

  it('declaring idempotency none: lost answers are parked, never sent twice', async () => {
    const reports = await runEventChecks(referenceEventDriver({ idempotency: 'none' }));
    expect(failures(reports)).toEqual([]);
    expect(reports.find((r) => r.id === 'resend')).toMatchObject({ status: 'skipped' });
    expect(reports.find((r) => r.id === 'lost-answer')?.message).toMatch(/parked as "outcome unknown" \(idempotency none\)/);
  });
});

interface Variant {
  check: string;
  what: string;
  bugs?: Bugs;
  driver?: Partial<EventDriver<ReferenceConfig>>;
  message: RegExp;
}

const variants: Variant[] = [
  { check: 'event-capabilities', what: "does not declare 'event'", bugs: { operations: ['upsert'] }, message: /operations is \["upsert"\]; an event destination declares 'event'/ },
  { check: 'event-capabilities', what: 'declares idempotency match', bugs: { idempotency: 'match' }, message: /an event has no match key to upsert on/ },
  { check: 'deliver-once', what: 'acknowledges an event it drops', bugs: { dropAt: 1 }, message: /was acknowledged but the destination never accepted it: it was lost/ },
  { check: 'resend', what: 'declares key but accepts a re-sent event again', bugs: { noDedupe: true }, message: /accepted event "ev-[^"]+" 2 times; idempotency "key" promises/ },
  { check: 'throttle', what: 'takes a 429 as a permanent rejection', bugs: { permanent429: true }, message: /a 429 surfaced as .* throw a retryable OutflowError/ },
  { check: 'server-error', what: 'takes a 5xx as a permanent rejection', bugs: { permanent5xx: true }, message: /a 5xx surfaced as .* every event must be retryable, none acknowledged/ },
  { check: 'server-error', what: 'answers ok for a batch the service failed', bugs: { okOn5xx: true }, message: /a 5xx surfaced as \[\{"ok":true\}/ },
  { check: 'lost-answer', what: 'marks a lost answer as notApplied', bugs: { lossNotApplied: true }, message: /surfaced as notApplied .* but the service accepted the events/ },
  {
    check: 'lost-answer',
    what: 'declares key, but accepts the event sent again after a lost answer',
    bugs: { noDedupe: true },
    message: /accepted event "ev-[^"]+" 2 times/,
  },
  { check: 'row-error', what: 'accepts a payload it should refuse', bugs: { acceptInvalid: true }, message: /the refused payload .* was acknowledged/ },
  { check: 'row-error', what: 'refuses a bad payload as retryable', bugs: { invalidRetryable: true }, message: /rejected as retryable .* retryable must be false/ },
  { check: 'row-error', what: 'fails the whole batch for one bad payload', bugs: { invalidFailsBatch: true }, message: /failed as a whole .* must be that event's row error/ },
  {
    check: 'rate-limits',
    what: 'declares limits above what the service enforces',
    bugs: { rateLimits: [{ requests: 80, perMs: LIMIT.perMs }] },
    message: /the service enforces 40 requests per 300 ms, and the declared limits .* allow more/,
  },
  {
    check: 'rate-limits',
    what: 'is refused at its declared limit (the driver’s enforcedLimits() is wrong)',
    bugs: { enforced: { requests: 10, perMs: LIMIT.perMs } },
    driver: { enforcedLimits: () => [LIMIT] },
    message: /a burst of 40 events paced by the declared limits .* was refused/,
  },
];

describe('the event suite catches a broken event destination', () => {
  it('has a broken variant for every check', () => {
    const covered = new Set(variants.map((v) => v.check));
    expect(eventCheckList().map((c) => c.id).filter((id) => !covered.has(id))).toEqual([]);
  });

  for (const v of variants) {
    it(`${v.check} fails a destination that ${v.what}`, async () => {
      const [report] = await runEventChecks(referenceEventDriver(v.bugs, v.driver), [v.check]);
      expect(report?.status, report?.message).toBe('failed');
      expect(report!.message!.startsWith(`[${v.check}] `), report!.message).toBe(true);
      expect(report!.message).toMatch(v.message);
    });
  }
});
