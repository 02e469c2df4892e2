/**
 * The property model: definitions in the shape the properties API returns, and what a
 * portal starts with: a small, faithful subset of HubSpot's standard properties for
 * contacts, companies, deals and tickets, plus the system properties of custom objects.
 */

/** The property types HubSpot has. */
export const PROPERTY_TYPES = ['string', 'number', 'date', 'datetime', 'enumeration', 'bool', 'phone_number'] as const;

/** A property type as HubSpot names it. */
export type PropertyType = (typeof PROPERTY_TYPES)[number];

/** A property definition as `GET /crm/v3/properties/{objectType}` returns it. */
export interface PropertyDefinition {
  name: string;
  label: string;
  type: PropertyType;
  fieldType: string;
  groupName: string;
  description: string;
  options: { label: string; value: string; displayOrder: number; hidden: boolean }[];
  hasUniqueValue: boolean;
  hubspotDefined: boolean;
  hidden: boolean;
  formField: boolean;
  displayOrder: number;
  calculated: boolean;
  externalOptions: boolean;
  modificationMetadata: { archivable: boolean; readOnlyDefinition: boolean; readOnlyValue: boolean };
  createdAt: string;
  updatedAt: string;
  archived: boolean;
}

/** What a caller gives to define a property; the rest is filled in. */
export interface PropertySpec {
  name: string;
  type: PropertyType;
  label?: string;
  fieldType?: string;
  groupName?: string;
  description?: string;
  options?: string[] | { label: string; value: string }[];
  hasUniqueValue?: boolean;
  readOnly?: boolean;
  hubspotDefined?: boolean;
}

const FIELD_TYPES: Record<PropertyType, string> = {
  string: 'text',
  number: 'number',
  date: 'date',
  datetime: 'date',
  enumeration: 'select',
  bool: 'booleancheckbox',
  phone_number: 'phonenumber',
};

const EPOCH = '2020-01-01T00:00:00.000Z';

function labelOf(name: string): string {
  return name.replace(/^hs_/, '').replace(/_/g, ' ').replace(/^\w/, (c) => c.toUpperCase());
}

/** Fills a {@link PropertySpec} into a full definition. */
export function defineProperty(spec: PropertySpec, now = EPOCH): PropertyDefinition {
  const options = (spec.options ?? []).map((o, i) =>
    typeof o === 'string' ? { label: labelOf(o), value: o, displayOrder: i, hidden: false } : { ...o, displayOrder: i, hidden: false },
  );
  const type = spec.type;
  return {
    name: spec.name,
    label: spec.label ?? labelOf(spec.name),
    type,
    fieldType: spec.fieldType ?? (type === 'bool' ? 'booleancheckbox' : FIELD_TYPES[type]),
    groupName: spec.groupName ?? 'information',
    description: spec.description ?? '',
    options:
      type === 'bool' && options.length === 0
        ? [
            { label: 'Yes', value: 'true', displayOrder: 0, hidden: false },
            { label: 'No', value: 'false', displayOrder: 1, hidden: false },
          ]
        : options,
    hasUniqueValue: spec.hasUniqueValue ?? false,
    hubspotDefined: spec.hubspotDefined ?? false,
    hidden: false,
    formField: !spec.readOnly,
    displayOrder: -1,
    calculated: false,
    externalOptions: false,
    modificationMetadata: { archivable: !spec.hubspotDefined, readOnlyDefinition: spec.hubspotDefined ?? false, readOnlyValue: spec.readOnly ?? false },
    createdAt: now,
    updatedAt: now,
    archived: false,
  };
}

const std = (name: string, type: PropertyType, extra: Partial<PropertySpec> = {}): PropertySpec => ({
  name,
  type,
  hubspotDefined: true,
  ...extra,
});

const system = (modified: string): PropertySpec[] => [
  std('hs_object_id', 'number', { readOnly: true, label: 'Record ID' }),
  std('createdate', 'datetime', { readOnly: true, label: 'Create date' }),
  std(modified, 'datetime', { readOnly: true, label: 'Last modified date' }),
  std('hubspot_owner_id', 'enumeration', { options: [], fieldType: 'select', label: 'Owner' }),
];

/** The name of the "last modified" property of an object type. */
export function modifiedProperty(objectType: string): string {
  return objectType === 'contacts' ? 'lastmodifieddate' : 'hs_lastmodifieddate';
}

/** Contacts and companies share HubSpot's lifecycle stage property. */
const lifecycleStage = std('lifecyclestage', 'enumeration', {
  label: 'Lifecycle stage',
  fieldType: 'radio',
  options: ['subscriber', 'lead', 'marketingqualifiedlead', 'salesqualifiedlead', 'opportunity', 'customer', 'evangelist', 'other'],
});

/** The properties HubSpot gives every custom object, ahead of its own. */
export const CUSTOM_OBJECT_SYSTEM_PROPERTIES: PropertySpec[] = [
  std('hs_object_id', 'number', { readOnly: true, label: 'Record ID' }),
  std('hs_createdate', 'datetime', { readOnly: true, label: 'Create date' }),
  std('hs_lastmodifieddate', 'datetime', { readOnly: true, label: 'Last modified date' }),
];

/** The objectTypeId of each standard object. */
export const STANDARD_IDS: Record<string, string> = { contacts: '0-1', companies: '0-2', deals: '0-3', tickets: '0-5' };

/** The standard objects and their default properties. */
export const STANDARD_OBJECTS: Record<string, PropertySpec[]> = {
  contacts: [
    ...system('lastmodifieddate'),
    std('email', 'string', { hasUniqueValue: true, label: 'Email' }),
    std('firstname', 'string', { label: 'First name' }),
    std('lastname', 'string', { label: 'Last name' }),
    std('phone', 'phone_number', { label: 'Phone number' }),
    std('company', 'string', { label: 'Company name' }),
    std('website', 'string', { label: 'Website URL' }),
    std('jobtitle', 'string', { label: 'Job title' }),
    std('city', 'string'),
    std('state', 'string', { label: 'State/Region' }),
    std('country', 'string', { label: 'Country/Region' }),
    std('zip', 'string', { label: 'Postal code' }),
    std('date_of_birth', 'string', { label: 'Date of birth' }),
    std('total_revenue', 'number', { label: 'Total revenue' }),
    std('hs_email_optout', 'bool', { label: 'Unsubscribed from all email' }),
    lifecycleStage,
    std('hs_lead_status', 'enumeration', {
      label: 'Lead status',
      fieldType: 'radio',
      options: ['NEW', 'OPEN', 'IN_PROGRESS', 'OPEN_DEAL', 'UNQUALIFIED', 'ATTEMPTED_TO_CONTACT', 'CONNECTED', 'BAD_TIMING'],
    }),
  ],
  companies: [
    ...system('hs_lastmodifieddate'),
    std('name', 'string', { label: 'Company name' }),
    std('domain', 'string', { label: 'Company domain name' }),
    std('industry', 'enumeration', {
      options: ['ACCOUNTING', 'BANKING', 'COMPUTER_SOFTWARE', 'CONSUMER_GOODS', 'EDUCATION_MANAGEMENT', 'FINANCIAL_SERVICES', 'HOSPITAL_HEALTH_CARE', 'INTERNET', 'RETAIL'],
    }),
    std('phone', 'phone_number', { label: 'Phone number' }),
    std('city', 'string'),
    std('country', 'string', { label: 'Country/Region' }),
    std('numberofemployees', 'number', { label: 'Number of employees' }),
    std('annualrevenue', 'number', { label: 'Annual revenue' }),
    std('founded_year', 'string', { label: 'Year founded' }),
    std('is_public', 'bool', { label: 'Is public' }),
    lifecycleStage,
  ],
  deals: [
    ...system('hs_lastmodifieddate'),
    std('dealname', 'string', { label: 'Deal name' }),
    std('amount', 'number'),
    std('closedate', 'datetime', { label: 'Close date' }),
    std('pipeline', 'enumeration', { options: ['default'] }),
    std('dealstage', 'enumeration', {
      label: 'Deal stage',
      options: ['appointmentscheduled', 'qualifiedtobuy', 'presentationscheduled', 'decisionmakerboughtin', 'contractsent', 'closedwon', 'closedlost'],
    }),
    std('dealtype', 'enumeration', { label: 'Deal type', options: ['newbusiness', 'existingbusiness'] }),
    std('description', 'string'),
  ],
  tickets: [
    ...system('hs_lastmodifieddate'),
    std('subject', 'string', { label: 'Ticket name' }),
    std('content', 'string', { label: 'Ticket description' }),
    std('hs_pipeline', 'enumeration', { label: 'Pipeline', options: ['0'] }),
    std('hs_pipeline_stage', 'enumeration', { label: 'Ticket status', options: ['1', '2', '3', '4'] }),
    std('hs_ticket_priority', 'enumeration', { label: 'Priority', options: ['LOW', 'MEDIUM', 'HIGH', 'URGENT'] }),
    std('hs_ticket_category', 'enumeration', {
      label: 'Category',
      fieldType: 'checkbox',
      options: ['PRODUCT_ISSUE', 'BILLING_ISSUE', 'FEATURE_REQUEST', 'GENERAL_INQUIRY'],
    }),
    std('source_type', 'enumeration', { label: 'Source', options: ['CHAT', 'EMAIL', 'FORM', 'PHONE'] }),
  ],
};

/**
 * Custom contact properties the sandbox portal comes with, as an admin would create them in
 * HubSpot (Settings → Properties) or with the properties API, so the quickstart has somewhere
 * to put a plan, a lifetime value and a sign-up time.
 */
export const SANDBOX_CONTACT_PROPERTIES: PropertySpec[] = [
  { name: 'plan', type: 'enumeration', label: 'Plan', groupName: 'outflow', options: ['free', 'starter', 'pro', 'enterprise'] },
  { name: 'lifetime_value', type: 'number', label: 'Lifetime value', groupName: 'outflow' },
  { name: 'signed_up_at', type: 'datetime', label: 'Signed up at', groupName: 'outflow' },
];
