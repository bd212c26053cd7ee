import { readFileSync } from 'node:fs';

/**
 * The node flags `npm start` gives the gateway (`node <flags> dist/src/main.js` in package.json), e.g.
 * `--max-semi-space-size=32`: the benchmark (its gateway, its direct REST floor and `client-calls.ts`) and the
 * soak run with them, so that they measure the gateway as it is deployed. `test/gateway/supervisor.test.ts` starts
 * the gateway through `npm start`, so a flag this node does not know fails the tests. `startScript` is package.json's
 * start script unless given (a test gives one of another shape).
 */
export function startNodeFlags(startScript = packageStartScript()): string[] {
  const match = /\bnode ((?:--\S+ )*)dist\/src\/main\.js/.exec(startScript);
  if (!match) throw new Error('package.json: the start script no longer runs `node [flags] dist/src/main.js`; update scripts/start-flags.ts');
  return match[1]!.split(' ').filter(Boolean);
}

function packageStartScript(): string {
  const packageJson = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string> };
  return packageJson.scripts['start'] ?? '';
}
