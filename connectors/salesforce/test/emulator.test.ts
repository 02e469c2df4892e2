import './home.js';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSign } from 'node:crypto';
import { AuthInfo, Connection } from '@salesforce/core';
import { parseCsv, start, type SalesforceEmulator, type SalesforceEmulatorOptions } from '@outflow/connector-salesforce/emulator';
import { afterEach, describe, expect, it } from 'vitest';
import { CUSTOMER } from './fixtures.js';

// The emulator driven through the real SDK: @salesforce/core's Connection (jsforce) makes
// every request, as the connector does.

const KEY_FILE = new URL('./fixtures/jwt-test-key.pem', import.meta.url);
const CERT = readFileSync(new URL('./fixtures/jwt-test-cert.pem', import.meta.url), 'utf8');

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function emulator(options: SalesforceEmulatorOptions = {}): Promise<SalesforceEmulator> {
  const emu = await start({ customObjects: [CUSTOMER], ...options });
  cleanups.push(() => emu.stop());
  return emu;
}

async function connect(emu: SalesforceEmulator, accessToken = emu.config.accessToken): Promise<Connection> {
  const authInfo = await AuthInfo.create({ username: accessToken, accessTokenOptions: { accessToken, instanceUrl: emu.url } });
  return Connection.create({ authInfo, connectionOptions: { version: '62.0' } });
}

/** The error jsforce throws for a refused request: its errorCode and message. */
async function refusal(p: PromiseLike<unknown>): Promise<{ errorCode: string; message: string }> {
  try {
    await p;
  } catch (err) {
    return { errorCode: (err as { errorCode: string }).errorCode, message: (err as Error).message };
  }
  throw new Error('the request was not refused');
}

const v = '/services/data/v62.0';

describe('salesforce emulator through @salesforce/core', () => {
  it('describes objects: types, lengths, picklists, what a create requires, which fields are external ids', async () => {
    const emu = await emulator();
    const conn = await connect(emu);
    const global = await conn.describeGlobal();
    expect(global.sobjects.map((s) => s.name)).toEqual(expect.arrayContaining(['Account', 'Contact', 'Lead', 'Customer__c']));
    const lead = await conn.describe('Lead');
    const field = (name: string) => lead.fields.find((f) => f.name === name)!;
    expect(field('LastName')).toMatchObject({ type: 'string', length: 80, nillable: false, createable: true, defaultedOnCreate: false });
    expect(field('Status')).toMatchObject({ type: 'picklist', restrictedPicklist: true, defaultedOnCreate: true });
    expect(field('Status').picklistValues!.map((p) => p.value)).toContain('Open - Not Contacted');
    expect(field('Email')).toMatchObject({ type: 'email', idLookup: true, externalId: false });
    expect(field('Id')).toMatchObject({ createable: false, updateable: false });
    const customer = await conn.describe('Customer__c');
    expect(customer.fields.find((f) => f.name === 'External_Id__c')).toMatchObject({ externalId: true, unique: true, idLookup: true, custom: true });
    expect(customer.fields.find((f) => f.name === 'Name')).toMatchObject({ nillable: false, createable: true });
  });

  it('creates through sObject Collections with results in order, a bad record failing alone', async () => {
    const emu = await emulator();
    const conn = await connect(emu);
    const results = await conn.create('Contact', [{ LastName: 'Lovelace', Email: 'ada@example.com' }, { FirstName: 'No last name' }, { LastName: 'Hopper' }]);
    expect(results.map((r) => r.success)).toEqual([true, false, true]);
    expect(results[1]).toMatchObject({ errors: [{ statusCode: 'REQUIRED_FIELD_MISSING', fields: ['LastName'] }] });
    expect((results[0] as { id: string }).id).toMatch(/^003[a-zA-Z0-9]{15}$/);
    expect(emu.writes().filter((w) => w.op === 'create')).toHaveLength(2);
    expect(emu.writes()[0]).toMatchObject({ via: 'collections', object: 'Contact' });
  });

  it('rolls back a whole request with allOrNone, answering the others as rolled back', async () => {
    const emu = await emulator();
    const conn = await connect(emu);
    const results = await conn.create('Contact', [{ LastName: 'Ok' }, { FirstName: 'Missing' }], { allOrNone: true });
    expect(results.map((r) => r.success)).toEqual([false, false]);
    expect(results[0]).toMatchObject({ errors: [{ statusCode: 'ALL_OR_NONE_OPERATION_ROLLED_BACK' }] });
    expect(emu.records('Contact')).toHaveLength(0);
    expect(emu.writes()).toHaveLength(0);
  });

  it('refuses more than 200 records, unknown fields and values of the wrong type as a whole request', async () => {
    const emu = await emulator();
    const conn = await connect(emu);
    const many = Array.from({ length: 201 }, (_, i) => ({ attributes: { type: 'Contact' }, LastName: `L${i}` }));
    const post = (records: unknown[]) => conn.request({ method: 'POST', url: `${v}/composite/sobjects`, body: JSON.stringify({ allOrNone: false, records }), headers: { 'content-type': 'application/json' } });
    expect(await refusal(post(many))).toMatchObject({ errorCode: 'EXCEEDED_ID_LIMIT' });
    expect(await refusal(post([{ attributes: { type: 'Contact' }, LastName: 'x', Nickname__c: 'y' }]))).toMatchObject({ errorCode: 'INVALID_FIELD' });
    expect(await refusal(post([{ attributes: { type: 'Customer__c' }, Name: 'x', Seats__c: 'many' }]))).toMatchObject({ errorCode: 'JSON_PARSER_ERROR' });
    expect(emu.writes()).toHaveLength(0);
  });

  it('validates records as Salesforce does: restricted picklists, lengths, emails, read-only fields, unique values', async () => {
    const emu = await emulator();
    const conn = await connect(emu);
    const results = await conn.create('Lead', [
      { LastName: 'A', Company: 'C', Status: 'Maybe' },
      { LastName: 'x'.repeat(81), Company: 'C' },
      { LastName: 'B', Company: 'C', Email: 'not-an-email' },
      { LastName: 'C', Company: 'C' },
    ]);
    expect(results.map((r) => (r.success ? 'ok' : (r as unknown as { errors: { statusCode: string }[] }).errors[0]!.statusCode))).toEqual([
      'INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST',
      'STRING_TOO_LONG',
      'INVALID_EMAIL_ADDRESS',
      'ok',
    ]);
    expect(emu.records('Lead')[0]).toMatchObject({ Status: 'Open - Not Contacted' });
    const readOnly = await conn.create('Account', [{ Name: 'x', CreatedDate: '2020-01-01T00:00:00Z' }]);
    expect(readOnly[0]).toMatchObject({ success: false, errors: [{ statusCode: 'INVALID_FIELD_FOR_INSERT_UPDATE', fields: ['CreatedDate'] }] });
    const first = await conn.create('Customer__c', [{ Name: 'one', External_Id__c: 'k1' }]);
    expect(first[0]!.success).toBe(true);
    const second = await conn.create('Customer__c', [{ Name: 'two', External_Id__c: 'K1' }]);
    expect(second[0]).toMatchObject({ success: false, errors: [{ statusCode: 'DUPLICATE_VALUE' }] });
  });

  it('upserts on an external id through Collections, created or updated, and refuses a key repeated in one request', async () => {
    const emu = await emulator();
    const conn = await connect(emu);
    const first = await conn.upsert('Customer__c', [{ Name: 'a', External_Id__c: 'c-1', Seats__c: 1 }, { Name: 'b', External_Id__c: 'c-2' }], 'External_Id__c');
    expect(first.map((r) => [r.success, (r as { created?: boolean }).created])).toEqual([[true, true], [true, true]]);
    const again = await conn.upsert('Customer__c', [{ Name: 'a', External_Id__c: 'c-1', Seats__c: 2 }], 'External_Id__c');
    expect(again[0]).toMatchObject({ success: true, created: false, id: (first[0] as { id: string }).id });
    expect(emu.records('Customer__c').find((r) => r['External_Id__c'] === 'c-1')).toMatchObject({ Seats__c: 2 });
    const dup = await conn.upsert('Customer__c', [{ Name: 'x', External_Id__c: 'c-3' }, { Name: 'y', External_Id__c: 'c-3' }], 'External_Id__c');
    expect(dup.map((r) => (r as { errors: { statusCode: string }[] }).errors[0]?.statusCode)).toEqual(['DUPLICATE_VALUE', 'DUPLICATE_VALUE']);
    expect(emu.writes().filter((w) => w.op === 'create')).toHaveLength(2);
    const notKey = await refusal(conn.upsert('Customer__c', [{ Name: 'z', Seats__c: 3 }], 'Seats__c'));
    expect(notKey.errorCode).toBe('INVALID_FIELD');
  });

  it('upserts one record by external id: 201 created, 200 updated, 300 when several records hold the value', async () => {
    const emu = await emulator();
    const conn = await connect(emu);
    const patch = (object: string, field: string, value: string, body: unknown) =>
      conn.request({ method: 'PATCH', url: `${v}/sobjects/${object}/${field}/${value}`, body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
    expect(await patch('Customer__c', 'External_Id__c', 'x-1', { Name: 'one' })).toMatchObject({ success: true, created: true });
    expect(await patch('Customer__c', 'External_Id__c', 'x-1', { Name: 'uno' })).toMatchObject({ success: true, created: false });
    await conn.create('Contact', [{ LastName: 'a', Email: 'same@example.com' }, { LastName: 'b', Email: 'same@example.com' }]);
    expect(await refusal(patch('Contact', 'Email', 'same@example.com', { LastName: 'c' }))).toMatchObject({ errorCode: 'MULTIPLE_CHOICES' });
  });

  it('updates and deletes by id through Collections; gone records answer ENTITY_IS_DELETED', async () => {
    const emu = await emulator();
    const conn = await connect(emu);
    const [a] = (await conn.create('Account', [{ Name: 'Acme' }])) as { id: string }[];
    const updated = await conn.update('Account', [{ Id: a!.id, Industry: 'Energy' }]);
    expect(updated[0]).toMatchObject({ success: true });
    const deleted = await conn.destroy('Account', [a!.id]);
    expect(deleted[0]).toMatchObject({ success: true, id: a!.id });
    const again = await conn.destroy('Account', [a!.id]);
    expect(again[0]).toMatchObject({ success: false, errors: [{ statusCode: 'ENTITY_IS_DELETED' }] });
    const gone = await conn.update('Account', [{ Id: a!.id, Industry: 'Retail' }]);
    expect(gone[0]).toMatchObject({ success: false, errors: [{ statusCode: 'ENTITY_IS_DELETED' }] });
    expect(emu.writes().map((w) => w.op)).toEqual(['create', 'update', 'delete']);
  });

  it('answers the SOQL subset with nextRecordsUrl paging, and refuses the rest as MALFORMED_QUERY', async () => {
    const emu = await emulator();
    const conn = await connect(emu);
    for (let i = 0; i < 13; i++) {
      await conn.create('Customer__c', Array.from({ length: 200 }, (_, k) => ({ Name: `n${i * 200 + k}`, External_Id__c: `e${i * 200 + k}`, Seats__c: k })));
    }
    const first = await conn.query<{ Id: string; External_Id__c: string }>('SELECT Id, External_Id__c FROM Customer__c');
    expect(first).toMatchObject({ totalSize: 2600, done: false });
    expect(first.records).toHaveLength(2000);
    const rest = await conn.queryMore<{ Id: string }>(first.nextRecordsUrl!);
    expect(rest).toMatchObject({ done: true });
    expect(rest.records).toHaveLength(600);
    const some = await conn.query("SELECT Name FROM Customer__c WHERE External_Id__c IN ('e1', 'E2', 'nope') LIMIT 5");
    expect(some.records.map((r) => (r as { Name: string }).Name).sort()).toEqual(['n1', 'n2']);
    expect((await conn.query("SELECT Id FROM Customer__c WHERE Name = 'n7'")).totalSize).toBe(1);
    expect(await refusal(conn.query('SELECT COUNT() FROM Customer__c'))).toMatchObject({ errorCode: 'MALFORMED_QUERY' });
    expect(await refusal(conn.query("SELECT Id FROM Customer__c WHERE Name LIKE 'n%'"))).toMatchObject({ errorCode: 'MALFORMED_QUERY' });
    expect(await refusal(conn.query('SELECT Nope__c FROM Customer__c'))).toMatchObject({ errorCode: 'INVALID_FIELD' });
    expect(await refusal(conn.query('SELECT Id FROM Nope__c'))).toMatchObject({ errorCode: 'INVALID_TYPE' });
  });

  it('runs a Bulk API 2.0 ingest job through the SDK: upload, UploadComplete, poll, result CSVs', async () => {
    const emu = await emulator();
    const conn = await connect(emu);
    conn.bulk2.pollInterval = 20;
    const csv = ['External_Id__c,Name,Plan__c,Seats__c', 'b-1,One,free,1', 'b-2,Two,gold,2', 'b-3,Three,pro,x', 'b-4,Four,#N/A,4'].join('\n') + '\n';
    const results = await conn.bulk2.loadAndWaitForResults({ object: 'Customer__c', operation: 'upsert', externalIdFieldName: 'External_Id__c', input: csv });
    expect(results.successfulResults.map((r) => [(r as Record<string, unknown>)['External_Id__c'], r.sf__Created])).toEqual([
      ['b-1', 'true'],
      ['b-4', 'true'],
    ]);
    expect(results.failedResults.map((r) => [(r as Record<string, unknown>)['External_Id__c'], String(r.sf__Error).split(':')[0]])).toEqual([
      ['b-2', 'INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST'],
      ['b-3', 'INVALID_TYPE_ON_FIELD_IN_RECORD'],
    ]);
    expect(results.unprocessedRecords).toEqual([]);
    expect(emu.writes().filter((w) => w.via === 'bulk' && w.op === 'create')).toHaveLength(2);
    expect(emu.bulkJobsProcessed).toBe(1);
  });

  it('fails a Bulk job whose CSV names an unknown column, with every row unprocessed', async () => {
    const emu = await emulator();
    const conn = await connect(emu);
    const job = await conn.request<{ id: string; state: string }>({
      method: 'POST',
      url: `${v}/jobs/ingest`,
      body: JSON.stringify({ object: 'Contact', operation: 'insert', contentType: 'CSV', lineEnding: 'LF' }),
      headers: { 'content-type': 'application/json' },
    });
    expect(job.state).toBe('Open');
    await conn.request({ method: 'PUT', url: `${v}/jobs/ingest/${job.id}/batches`, body: 'LastName,Shoe_Size__c\nA,42\n', headers: { 'content-type': 'text/csv' } });
    await conn.request({ method: 'PATCH', url: `${v}/jobs/ingest/${job.id}`, body: JSON.stringify({ state: 'UploadComplete' }), headers: { 'content-type': 'application/json' } });
    let info: { state: string; errorMessage?: string } = { state: 'UploadComplete' };
    while (info.state === 'UploadComplete' || info.state === 'InProgress') {
      await new Promise((r) => setTimeout(r, 20));
      info = await conn.request({ method: 'GET', url: `${v}/jobs/ingest/${job.id}` });
    }
    expect(info).toMatchObject({ state: 'Failed', errorMessage: 'InvalidBatch : Field name not found : Shoe_Size__c' });
    const unprocessed = await conn.request<string>({ method: 'GET', url: `${v}/jobs/ingest/${job.id}/unprocessedrecords` }, { responseType: 'text/plain' });
    expect(parseCsv(unprocessed)).toEqual([['LastName', 'Shoe_Size__c'], ['A', '42']]);
    expect(emu.writes()).toHaveLength(0);
  });

  it('reports Sforce-Limit-Info on every answer and refuses with REQUEST_LIMIT_EXCEEDED once the allocation is spent', async () => {
    const emu = await emulator({ dailyAllocation: 5 });
    const conn = await connect(emu);
    await conn.describe('Account');
    expect(conn.limitInfo).toEqual({ apiUsage: { used: 1, limit: 5 } });
    for (let i = 0; i < 4; i++) await conn.create('Account', [{ Name: `A${i}` }]);
    expect(conn.limitInfo).toEqual({ apiUsage: { used: 5, limit: 5 } });
    expect(await refusal(conn.create('Account', [{ Name: 'too many' }]))).toMatchObject({ errorCode: 'REQUEST_LIMIT_EXCEEDED', message: 'TotalRequests Limit exceeded.' });
    expect(emu.records('Account')).toHaveLength(4);
  });

  it('refuses unknown and expired sessions with INVALID_SESSION_ID', async () => {
    const emu = await emulator();
    const stranger = await connect(emu, '00D5g000004EMUL!AQnot.a.token');
    expect(await refusal(stranger.describe('Account'))).toMatchObject({ errorCode: 'INVALID_SESSION_ID' });
    const conn = await connect(emu);
    await conn.describe('Account');
    emu.expireSessions();
    expect(await refusal(conn.describe('Lead'))).toMatchObject({ errorCode: 'INVALID_SESSION_ID' });
  });

  it('issues sessions by the JWT bearer flow, verifying the signature against the certificate and the claims', async () => {
    const emu = await emulator({ jwt: { clientId: 'consumer-key', certificate: CERT, usernames: ['integration@acme.test'] } });
    // @salesforce/core's own JWT client: it signs with the key file and posts to the login URL.
    const authInfo = await AuthInfo.create({ username: 'integration@acme.test', oauth2Options: { clientId: 'consumer-key', loginUrl: emu.url, privateKeyFile: KEY_FILE.pathname } });
    const conn = await Connection.create({ authInfo, connectionOptions: { version: '62.0' } });
    expect(conn.accessToken).toMatch(/^00D\w{12}!/);
    expect((await conn.describe('Account')).name).toBe('Account');

    const token = (claims: Record<string, unknown>, key = readFileSync(KEY_FILE, 'utf8')) => {
      const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
      const body = `${enc({ alg: 'RS256' })}.${enc(claims)}`;
      return `${body}.${createSign('RSA-SHA256').update(body).sign(key).toString('base64url')}`;
    };
    const exchange = async (assertion: string) => {
      const res = await fetch(`${emu.url}/services/oauth2/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion }),
      });
      return { status: res.status, body: (await res.json()) as Record<string, string> };
    };
    const good = { iss: 'consumer-key', sub: 'integration@acme.test', aud: 'https://login.salesforce.com', exp: Math.floor(Date.now() / 1000) + 180 };
    expect((await exchange(token(good))).body).toMatchObject({ token_type: 'Bearer', instance_url: emu.url });
    expect((await exchange(token({ ...good, iss: 'someone-else' }))).body).toMatchObject({ error: 'invalid_client_id' });
    expect((await exchange(token({ ...good, sub: 'intruder@acme.test' }))).body).toMatchObject({ error: 'invalid_grant' });
    expect((await exchange(token({ ...good, aud: 'https://test.salesforce.com' }))).body.error_description).toMatch(/audience/);
    expect((await exchange(token({ ...good, exp: Math.floor(Date.now() / 1000) - 1 }))).body).toMatchObject({ error: 'invalid_grant' });
    const { privateKey: other } = await import('node:crypto').then((c) => c.generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } }));
    const forged = await exchange(token(good, other));
    expect(forged).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
  });

  it('loses answers of writes it applied, and answers injected 503s in Salesforce shape', async () => {
    const emu = await emulator();
    const conn = await connect(emu);
    emu.setFaults({ loseAnswers: 1 });
    await expect(conn.create('Account', [{ Name: 'lost' }])).rejects.toThrow();
    expect(emu.writes().filter((w) => w.op === 'create')).toHaveLength(1);
    emu.setFaults({ failRequests: 1 });
    expect(await refusal(conn.create('Account', [{ Name: 'unavailable' }]))).toMatchObject({ errorCode: 'SERVER_UNAVAILABLE' });
    expect(emu.records('Account').map((r) => r['Name'])).toEqual(['lost']);
  });

  it('keeps records and jobs across a restart on the same dataDir', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'sf-emu-'));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    const first = await start({ dataDir, customObjects: [CUSTOMER] });
    const conn = await connect(first);
    await conn.upsert('Customer__c', [{ Name: 'kept', External_Id__c: 'p-1' }], 'External_Id__c');
    await first.stop();
    const second = await emulator({ dataDir });
    expect(second.records('Customer__c').map((r) => r['External_Id__c'])).toEqual(['p-1']);
    const again = await (await connect(second)).upsert('Customer__c', [{ Name: 'kept', External_Id__c: 'P-1' }], 'External_Id__c');
    expect(again[0]).toMatchObject({ created: false });
    const next = await (await connect(second)).create('Customer__c', [{ Name: 'new', External_Id__c: 'p-2' }]);
    expect((next[0] as { id: string }).id).not.toBe(second.records('Customer__c')[0]!.Id);
  });
});
