/**
 * sObject definitions: the standard objects the emulator starts with (Account, Contact,
 * Lead), custom objects (`__c`) a test configures, and how describe renders them. Field
 * properties follow Salesforce's DescribeFieldResult: a field is required on create when it
 * is createable, not nillable and not defaulted on create.
 */

/** The field types the emulator knows, as describe names them. */
export type FieldType =
  | 'id'
  | 'string'
  | 'textarea'
  | 'email'
  | 'phone'
  | 'url'
  | 'picklist'
  | 'multipicklist'
  | 'boolean'
  | 'int'
  | 'double'
  | 'currency'
  | 'percent'
  | 'date'
  | 'datetime'
  | 'reference';

/** A field as a test declares it; everything left out takes Salesforce's usual value for a custom field. */
export interface FieldSpec {
  name: string;
  type: FieldType;
  label?: string;
  /** Characters, for text types (255 by default for string, 32,768 for textarea). */
  length?: number;
  /** Digits in all and after the point, for numbers. */
  precision?: number;
  scale?: number;
  /** Whether the field may be left empty (true by default). */
  nillable?: boolean;
  createable?: boolean;
  updateable?: boolean;
  /** Whether the field is an External ID (then also idLookup). */
  externalId?: boolean;
  /** Whether Salesforce refuses a second record with the same value. */
  unique?: boolean;
  /** Whether records can be found by the field (upsert keys, `Email` on Contact and Lead). */
  idLookup?: boolean;
  /** Whether Salesforce fills the field when a create leaves it out. */
  defaultedOnCreate?: boolean;
  picklistValues?: string[];
  /** The picklist value used when a create leaves the field out. */
  defaultValue?: string;
  /** Whether a value outside `picklistValues` is refused. */
  restrictedPicklist?: boolean;
  referenceTo?: string[];
}

/** A field with every property describe reports. */
export interface FieldDef {
  name: string;
  label: string;
  type: FieldType;
  length: number;
  precision: number;
  scale: number;
  nillable: boolean;
  createable: boolean;
  updateable: boolean;
  externalId: boolean;
  unique: boolean;
  idLookup: boolean;
  defaultedOnCreate: boolean;
  custom: boolean;
  picklistValues: string[];
  defaultValue?: string;
  restrictedPicklist: boolean;
  referenceTo: string[];
}

/** A custom object to create at start. */
export interface CustomObjectSpec {
  /** Ends in `__c`. */
  name: string;
  label?: string;
  fields: FieldSpec[];
}

export interface SObjectDef {
  name: string;
  label: string;
  keyPrefix: string;
  custom: boolean;
  fields: Map<string, FieldDef>;
}

const SOAP_TYPES: Record<FieldType, string> = {
  id: 'tns:ID',
  string: 'xsd:string',
  textarea: 'xsd:string',
  email: 'xsd:string',
  phone: 'xsd:string',
  url: 'xsd:string',
  picklist: 'xsd:string',
  multipicklist: 'xsd:string',
  boolean: 'xsd:boolean',
  int: 'xsd:int',
  double: 'xsd:double',
  currency: 'xsd:double',
  percent: 'xsd:double',
  date: 'xsd:date',
  datetime: 'xsd:dateTime',
  reference: 'tns:ID',
};

const TEXT_LENGTH: Partial<Record<FieldType, number>> = {
  id: 18,
  string: 255,
  textarea: 32_768,
  email: 80,
  phone: 40,
  url: 255,
  picklist: 255,
  multipicklist: 4099,
  reference: 18,
};

function labelOf(name: string): string {
  return name.replace(/__c$/, '').replace(/_/g, ' ').replace(/([a-z])([A-Z])/g, '$1 $2');
}

export function defineField(spec: FieldSpec, custom: boolean): FieldDef {
  const numeric = spec.type === 'int' || spec.type === 'double' || spec.type === 'currency' || spec.type === 'percent';
  const externalId = spec.externalId ?? false;
  return {
    name: spec.name,
    label: spec.label ?? labelOf(spec.name),
    type: spec.type,
    length: numeric || spec.type === 'boolean' || spec.type === 'date' || spec.type === 'datetime' ? 0 : (spec.length ?? TEXT_LENGTH[spec.type] ?? 255),
    precision: numeric ? (spec.precision ?? (spec.type === 'int' ? 9 : 18)) : 0,
    scale: numeric ? (spec.scale ?? (spec.type === 'int' ? 0 : 2)) : 0,
    // A checkbox is never empty: it is false unless set.
    nillable: spec.type === 'boolean' ? false : (spec.nillable ?? true),
    createable: spec.createable ?? true,
    updateable: spec.updateable ?? true,
    externalId,
    unique: spec.unique ?? false,
    idLookup: spec.idLookup ?? externalId,
    defaultedOnCreate: spec.defaultedOnCreate ?? (spec.type === 'boolean' || spec.defaultValue !== undefined),
    custom,
    picklistValues: spec.picklistValues ?? [],
    ...(spec.defaultValue === undefined ? {} : { defaultValue: spec.defaultValue }),
    restrictedPicklist: spec.restrictedPicklist ?? false,
    referenceTo: spec.referenceTo ?? [],
  };
}

/** Whether a create must carry a value for the field. */
export function requiredOnCreate(f: FieldDef): boolean {
  return f.createable && !f.nillable && !f.defaultedOnCreate;
}

/** The fields every sObject has, which the API maintains. */
function systemFields(): FieldSpec[] {
  const readOnly = { createable: false, updateable: false, nillable: false, defaultedOnCreate: true };
  return [
    { name: 'Id', type: 'id', label: 'Record ID', ...readOnly, idLookup: true },
    { name: 'IsDeleted', type: 'boolean', label: 'Deleted', ...readOnly },
    { name: 'CreatedDate', type: 'datetime', label: 'Created Date', ...readOnly },
    { name: 'LastModifiedDate', type: 'datetime', label: 'Last Modified Date', ...readOnly },
    { name: 'SystemModstamp', type: 'datetime', label: 'System Modstamp', ...readOnly },
    { name: 'OwnerId', type: 'reference', label: 'Owner ID', nillable: false, defaultedOnCreate: true, referenceTo: ['User'] },
  ];
}

const LEAD_SOURCES = ['Web', 'Phone Inquiry', 'Partner Referral', 'Purchased List', 'Other'];

/** Account, Contact and Lead with the fields most syncs write, as a fresh org describes them. */
export const STANDARD_OBJECTS: { name: string; label: string; keyPrefix: string; fields: FieldSpec[] }[] = [
  {
    name: 'Account',
    label: 'Account',
    keyPrefix: '001',
    fields: [
      { name: 'Name', type: 'string', label: 'Account Name', nillable: false, idLookup: true },
      { name: 'AccountNumber', type: 'string', length: 40 },
      { name: 'Type', type: 'picklist', picklistValues: ['Prospect', 'Customer - Direct', 'Customer - Channel', 'Partner', 'Other'] },
      { name: 'Industry', type: 'picklist', picklistValues: ['Agriculture', 'Banking', 'Education', 'Energy', 'Technology', 'Retail', 'Other'] },
      { name: 'NumberOfEmployees', type: 'int', precision: 8 },
      { name: 'AnnualRevenue', type: 'currency', precision: 18, scale: 0 },
      { name: 'Website', type: 'url' },
      { name: 'Phone', type: 'phone' },
      { name: 'Description', type: 'textarea', length: 32_000 },
    ],
  },
  {
    name: 'Contact',
    label: 'Contact',
    keyPrefix: '003',
    fields: [
      { name: 'FirstName', type: 'string', length: 40 },
      { name: 'LastName', type: 'string', length: 80, nillable: false },
      { name: 'Email', type: 'email', idLookup: true },
      { name: 'Phone', type: 'phone' },
      { name: 'Title', type: 'string', length: 128 },
      { name: 'Birthdate', type: 'date' },
      { name: 'AccountId', type: 'reference', referenceTo: ['Account'] },
      { name: 'LeadSource', type: 'picklist', picklistValues: LEAD_SOURCES },
      { name: 'HasOptedOutOfEmail', type: 'boolean', label: 'Email Opt Out' },
    ],
  },
  {
    name: 'Lead',
    label: 'Lead',
    keyPrefix: '00Q',
    fields: [
      { name: 'FirstName', type: 'string', length: 40 },
      { name: 'LastName', type: 'string', length: 80, nillable: false },
      { name: 'Company', type: 'string', nillable: false },
      { name: 'Email', type: 'email', idLookup: true },
      {
        name: 'Status',
        type: 'picklist',
        nillable: false,
        restrictedPicklist: true,
        picklistValues: ['Open - Not Contacted', 'Working - Contacted', 'Closed - Converted', 'Closed - Not Converted'],
        defaultValue: 'Open - Not Contacted',
      },
      { name: 'LeadSource', type: 'picklist', picklistValues: LEAD_SOURCES },
      { name: 'Rating', type: 'picklist', picklistValues: ['Hot', 'Warm', 'Cold'] },
      { name: 'AnnualRevenue', type: 'currency', precision: 18, scale: 0 },
      { name: 'NumberOfEmployees', type: 'int', precision: 8 },
    ],
  },
];

export function defineObject(name: string, label: string, keyPrefix: string, custom: boolean, specs: FieldSpec[]): SObjectDef {
  const fields = new Map<string, FieldDef>();
  for (const spec of systemFields()) fields.set(spec.name, defineField(spec, false));
  // A custom object's Name is a text field a create must fill.
  if (custom && !specs.some((s) => s.name === 'Name')) fields.set('Name', defineField({ name: 'Name', type: 'string', length: 80, nillable: false, label: `${label} Name` }, false));
  for (const spec of specs) {
    if (custom && !spec.name.endsWith('__c') && spec.name !== 'Name') throw new TypeError(`custom field "${spec.name}" of ${name} must end in __c`);
    fields.set(spec.name, defineField(spec, spec.name.endsWith('__c')));
  }
  return { name, label, keyPrefix, custom, fields };
}

/** Finds a field by name as Salesforce does: without regard to case. */
export function fieldOf(object: SObjectDef, name: string): FieldDef | undefined {
  const exact = object.fields.get(name);
  if (exact !== undefined) return exact;
  const lower = name.toLowerCase();
  for (const f of object.fields.values()) if (f.name.toLowerCase() === lower) return f;
  return undefined;
}

/** `GET /sobjects/{name}/describe`. */
export function describeObject(object: SObjectDef, version: string): Record<string, unknown> {
  return {
    ...describeGlobalEntry(object, version),
    fields: [...object.fields.values()].map((f) => ({
      name: f.name,
      label: f.label,
      type: f.type,
      soapType: SOAP_TYPES[f.type],
      length: f.length,
      byteLength: f.length * 3,
      precision: f.precision,
      scale: f.scale,
      digits: f.type === 'int' ? f.precision : 0,
      nillable: f.nillable,
      createable: f.createable,
      updateable: f.updateable,
      externalId: f.externalId,
      unique: f.unique,
      idLookup: f.idLookup,
      defaultedOnCreate: f.defaultedOnCreate,
      custom: f.custom,
      calculated: false,
      autoNumber: false,
      caseSensitive: false,
      filterable: true,
      restrictedPicklist: f.restrictedPicklist,
      defaultValue: f.defaultValue ?? null,
      referenceTo: f.referenceTo,
      relationshipName: f.type === 'reference' ? f.name.replace(/Id$/, '') : null,
      picklistValues: f.picklistValues.map((v) => ({ active: true, defaultValue: v === f.defaultValue, label: v, validFor: null, value: v })),
    })),
  };
}

/** One entry of `GET /sobjects` (describe global). */
export function describeGlobalEntry(object: SObjectDef, version: string): Record<string, unknown> {
  const base = `/services/data/v${version}/sobjects/${object.name}`;
  return {
    name: object.name,
    label: object.label,
    labelPlural: `${object.label}s`,
    keyPrefix: object.keyPrefix,
    custom: object.custom,
    createable: true,
    updateable: true,
    deletable: true,
    queryable: true,
    urls: { sobject: base, describe: `${base}/describe`, rowTemplate: `${base}/{ID}` },
  };
}
