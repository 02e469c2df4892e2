import { EmulatorRefusal } from '@outflow/core/emulator-kit';

/** The API's error body, `{ "error": { "code", "message" } }`: every refusal the emulator answers has it. */
export const errorBody = (_status: number, code: string, message: string) => ({ error: { code, message } });

/** A refusal a route throws: answered `status` with the API's error body. */
export const refusal = (status: number, code: string, message: string) => new EmulatorRefusal(status, code, message);
