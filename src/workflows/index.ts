// Every workflow the worker registers. Workflow code is bundled separately: import only
// deterministic modules from here (the contract, activity types, pure helpers).
export { avatarConsentWorkflow } from './avatar-consent.js';
