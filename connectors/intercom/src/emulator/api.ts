import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { EmulatorRefusal } from '@outflow/core/emulator-kit';

/** The versions intercom-client 7 can ask for in its Intercom-Version header. */
const VERSIONS = new Set(['1.0', '1.1', '1.2', '1.3', '1.4', '2.0', '2.1', '2.2', '2.3', '2.4', '2.5', '2.6', '2.7', '2.8', '2.9', '2.10', '2.11', '2.12', '2.13', '2.14', 'Unstable']);

/** Intercom's codes for the kit's own refusals. */
const CODES: Record<string, string> = { rate_limited: 'rate_limit_exceeded', unavailable: 'service_unavailable', too_large: 'client_error', method_not_allowed: 'not_found' };

/** The API's error body, an `error.list`: every refusal the emulator answers has it. */
export const errorBody = (_status: number, code: string, message: string) => ({ type: 'error.list', request_id: randomUUID(), errors: [{ code: CODES[code] ?? code, message }] });

/** A refusal a route throws: answered `status` with the API's error body. */
export const refusal = (status: number, code: string, message: string) => new EmulatorRefusal(status, code, message);

/** The check of the Intercom-Version header: absent, or a version Intercom has. */
export function versionCheck(req: IncomingMessage): EmulatorRefusal | undefined {
  const version = req.headers['intercom-version'];
  return version === undefined || VERSIONS.has(String(version)) ? undefined : refusal(400, 'intercom_version_invalid', `The requested version ${String(version)} does not exist`);
}
