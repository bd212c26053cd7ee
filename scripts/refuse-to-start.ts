/**
 * Says each problem with the command's usage on stderr and exits 2 (a usage error) before anything starts: the
 * command-line tools' one way of refusing how they were started (a stack trace for a mistyped argument says
 * nothing more, and a run begun on a setting read as NaN wastes minutes).
 */
export function refuseToStart(tool: string, usage: string, problems: readonly string[]): never {
  console.error(`${problems.map((problem) => `${tool}: ${problem}`).join('\n')}\n${usage}`);
  return process.exit(2);
}
