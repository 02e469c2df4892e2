/**
 * @salesforce/core writes under ~/.sf and ~/.sfdx and, unless told otherwise, starts a
 * log-file worker there: tests give it a scratch HOME and no log file. Imported first by
 * every test file that loads the SDK.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

process.env['HOME'] = mkdtempSync(join(tmpdir(), 'outflow-sf-home-'));
process.env['SF_DISABLE_LOG_FILE'] = 'true';
