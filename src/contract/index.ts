/**
 * The public contract of avatar-consent, whole: names, schemas, signals, queries and updates.
 * Workflow code imports ./definitions.ts only (no zod); everyone else may import this.
 */
export * from './definitions.js';
export * from './schemas.js';
