/**
 * The embedded Context.IO 2.0 emulator: a real HTTP server speaking the upstream API (two-legged
 * OAuth 1.0a included) plus the browser connect flow, for offline development, tests and benchmarks.
 * What the rest of the project uses of it; tests reach further into its modules directly.
 */
export { startEmulator } from './server.ts';
export type { Emulator, EmulatorOptions } from './server.ts';
export { EmulatorStore } from './store.ts';
export { OAuthVerifier } from './oauth.ts';
