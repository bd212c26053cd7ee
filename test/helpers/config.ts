import { ConfigError, loadConfig, type Env } from '../../src/config/index.ts';

/** The problems `loadConfig` reports for an environment (one line each), or [] when it is accepted. */
export function configProblems(env: Env): string[] {
  try {
    loadConfig(env);
    return [];
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
}
