/**
 * The consent-return gateway. Activities that only build return links should import
 * `./tokens.js` directly (no HTTP server code); `main.ts` is the process entry (`npm run gateway`).
 */
export {
  buildReturnUrl,
  DEFAULT_RETURN_TOKEN_TTL,
  GatewayConfigError,
  GatewaySecrets,
  gatewaySecretsEnvSchema,
  gatewaySecretsIssues,
  loadReturnLinkConfig,
  MAX_RETURN_URL_LENGTH,
  MAX_TOKEN_LENGTH,
  MIN_SECRET_BYTES,
  parseGatewaySecretsEnv,
  publicBaseUrlSchema,
  RETURN_PATH,
  RETURN_TOKEN_VERSION,
  ReturnLinkError,
  ReturnTokenError,
  signReturnToken,
  tokenFingerprint,
  verifyReturnToken,
} from './tokens.js';
export type {
  BuildReturnUrlOptions,
  ReturnLinkConfig,
  ReturnTokenErrorCode,
  ReturnTokenPayload,
} from './tokens.js';
export {
  DEFAULT_RATE_LIMIT,
  jsonLineLogger,
  MAX_REQUEST_TARGET_LENGTH,
  startGateway,
  THANK_YOU_PATH,
} from './server.js';
export type { CheckNowSender, Gateway, GatewayLogger, GatewayOptions, LogFields } from './server.js';
export { HTML_SECURITY_HEADERS, pageStatus, renderPage } from './pages.js';
export type { GatewayPage } from './pages.js';
