import type { CustomObjectSpec } from '@outflow/connector-salesforce/emulator';

/** A custom object with a unique External ID, a restricted picklist and typed fields. */
export const CUSTOMER: CustomObjectSpec = {
  name: 'Customer__c',
  fields: [
    { name: 'External_Id__c', type: 'string', length: 40, externalId: true, unique: true },
    { name: 'Plan__c', type: 'picklist', picklistValues: ['free', 'pro', 'enterprise'], restrictedPicklist: true },
    { name: 'Seats__c', type: 'int' },
    { name: 'Active__c', type: 'boolean' },
    { name: 'Signed_Up__c', type: 'date' },
    { name: 'Renews_At__c', type: 'datetime' },
    { name: 'Email__c', type: 'email' },
  ],
};
