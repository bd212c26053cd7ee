import { readFileSync } from 'node:fs';

/**
 * The node flags `npm start` gives the gateway (`node <flags> dist/src/main.js` in package.json), e.g.
 * `--max-semi-space-size=32`: the benchmark and the soak run their gateway with them, so that they measure it
 * as it is deployed.
 */
export function startNodeFlags(): string[] {
  const packageJson = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string> };
  const match = /\bnode ((?:--\S+ )*)dist\/src\/main\.js/.exec(packageJson.scripts['start'] ?? '');
  if (!match) throw new Error('package.json: the start script no longer runs `node [flags] dist/src/main.js`; update scripts/start-flags.ts');
  return match[1]!.split(' ').filter(Boolean);
}
