/**
 * The embedded Context.IO 2.0 emulator: a real HTTP server speaking the upstream API (two-legged
 * OAuth 1.0a included) plus the browser connect flow, for offline development, tests and benchmarks.
 */
export { startEmulator } from './server.ts';
export type { Emulator, EmulatorOptions, EmulatorRequestLogEntry, FaultRule } from './server.ts';
export {
  EmulatorStore,
  ConnectTokenError,
  UnknownAccountError,
  CONNECT_TOKEN_TTL_SECONDS,
  SOURCE_STATUSES,
} from './store.ts';
export type {
  AccountFilter,
  ConnectInput,
  ConnectResult,
  ConnectTokenState,
  NewAccount,
  NewConnectToken,
  NewSource,
  SeedName,
} from './store.ts';
export { OAuthVerifier, TIMESTAMP_WINDOW_SECONDS } from './oauth.ts';
export type { OAuthRequest, OAuthVerdict, OAuthVerifierOptions } from './oauth.ts';
