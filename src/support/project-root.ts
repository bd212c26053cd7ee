import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project's root folder, found from this file whether it runs from `src/` or from the build in `dist/`. */
export function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'schema', 'base.graphql'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('Cannot find the schema/ folder above ' + fileURLToPath(import.meta.url));
    dir = parent;
  }
  return dir;
}

/**
 * The `version` of the project's package.json, or undefined when it cannot be read: the ready line names what runs,
 * so that in a fleet mid-deploy, or after a rollback, each instance's build can be told from its log.
 */
export function projectVersion(): string | undefined {
  try {
    const { version } = JSON.parse(readFileSync(join(projectRoot(), 'package.json'), 'utf8')) as { version?: unknown };
    return typeof version === 'string' ? version : undefined;
  } catch {
    return undefined;
  }
}
