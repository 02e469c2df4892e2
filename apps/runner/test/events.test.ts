import { describe, expect, it } from 'vitest';
import { start } from '@outflow/connector-webhook/emulator';
import { jsonLines, runCli, tempDir, writeConfig, writeCustomers } from './helpers.js';

const eventConfig = (url: string, secret: string, payload: string) => `version: 1
connections:
  warehouse:
    connector: duckdb
  hooks:
    connector: webhook
    config: { url: "${url}", secret: "${secret}" }
syncs:
  - name: vip-alerts
    from: { connection: warehouse, file: data/customers.csv, primaryKey: id }
    to:
      connection: hooks
      object: alerts
      mode: event
      triggers:
        - name: vip
          on: insert
          when: "score >= 95"
          payload: ${payload}
`;

describe('outflow in event mode', () => {
  it('validate names the file, line and column of a broken template; plan lists the events; run sends each once', async () => {
    const receiver = await start();
    try {
      const dir = tempDir();
      writeCustomers(dir, 200);
      writeConfig(dir, eventConfig(receiver.url, receiver.config.secret, '{ text: "VIP {{ after.name | shout }}" }'));
      const invalid = await runCli(['validate'], { cwd: dir });
      expect(invalid.code).toBe(2);
      expect(invalid.stderr).toMatch(
        /outflow\.yaml:19:28 \/syncs\/0\/to\/triggers\/0\/payload\/text: the template does not parse \(line 1, column 5 of the template\): undefined filter: shout/,
      );

      writeConfig(dir, eventConfig(receiver.url, receiver.config.secret, '{ text: "VIP {{ after.name }}", score: "{{ after.score }}" }'));
      const plan = await runCli(['plan'], { cwd: dir });
      expect(plan.code).toBe(0);
      // score is id % 97: ids 95, 96, 192 and 193 are at 95 or above.
      expect(plan.stdout).toContain('vip-alerts: 4 events to send, 196 changes firing no trigger');
      expect(plan.stdout).toMatch(/vip\s+95\s+alerts\s+\{"text":"VIP User 95","score":95\}/);
      expect(receiver.writes('alerts')).toEqual([]);

      const run = await runCli(['run', '--json'], { cwd: dir });
      expect(jsonLines(run.stdout)[0]).toMatchObject({ status: 'succeeded', inserted: 4, skipped: 196 });
      const again = await runCli(['run', '--json'], { cwd: dir });
      expect(jsonLines(again.stdout)[0]).toMatchObject({ inserted: 0 });
      expect(receiver.writes('alerts').map((w) => [w.t, w.key, w.payload])).toEqual([
        ['event', '95', { text: 'VIP User 95', score: 95 }],
        ['event', '96', { text: 'VIP User 96', score: 96 }],
        ['event', '192', { text: 'VIP User 192', score: 95 }],
        ['event', '193', { text: 'VIP User 193', score: 96 }],
      ]);
    } finally {
      await receiver.stop();
    }
  });
});
