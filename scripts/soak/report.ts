import { cpus } from 'node:os';
import { totals } from './client.ts';
import { handleCount, handleGrowth, liveBytes, type GatewayChild, type MemoryStats } from './gateway.ts';
import { startNodeFlags } from '../start-flags.ts';
import { HANDLE_ALLOWANCE, HANDLE_SETTLE_MS, HEAP_MARGIN_BYTES, MiB, RSS_MARGIN_BYTES, settings } from './settings.ts';
import { FAULT_DESCRIPTION } from './upstream.ts';

/** The soak's report (markdown), printed and, with `--out`, written to a file (docs/soak.md). */

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}
const ms = (value: number) => (Number.isNaN(value) ? '–' : `${value < 10 ? value.toFixed(1) : Math.round(value)} ms`);
const table = (header: string[], rows: Array<Array<string | number>>) =>
  [`| ${header.join(' | ')} |`, `| ${header.map((_h, i) => (i === 0 ? '---' : '---:')).join(' | ')} |`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
const sortedCounts = <K>(map: Map<K, number>) => [...map].sort((a, b) => b[1] - a[1]);

export interface MemorySample {
  atS: number;
  rssBytes: number;
  heapUsedBytes: number;
  /** Open handles, all types together (the samples taken during the load). */
  handles?: number;
}

export interface Outcome {
  failures: string[];
  elapsedS: number;
  memory: {
    samples: MemorySample[];
    /** Heap after a full GC: at the end of warm-up, every 10 s, and once the load has drained. */
    gcSamples: MemorySample[];
    warmup?: MemoryStats;
    startPeak: number;
    endPeak: number;
    windowS: number;
    end?: MemoryStats;
    drainedGc?: MemoryStats;
    slopeMiBPerMin: number;
  };
  /** The gateway's open handles (the HANDLE RULE): once ready before the load, at their most during it, once it had ended. */
  handles: { before?: MemoryStats; after?: MemoryStats; afterS: number; peakDuringLoad: number };
  upstream: { requests: number; byStatus: Map<number, number>; peakInFlight: number };
  gateway: GatewayChild;
  loadBefore: number[];
  loadAfter: number[];
  startedAt: Date;
}

export function report(outcome: Outcome): string {
  const { memory, upstream, gateway } = outcome;
  const all = [...totals.latenciesMs].sort((a, b) => a - b);
  const cpu = cpus();
  const lines: string[] = [];
  lines.push('# Soak test');
  lines.push('');
  lines.push(
    '`npm run soak` (scripts/soak.ts) drives the gateway, in its own process, with many concurrent clients ' +
      'while the embedded emulator, its upstream, injects latency, errors and hangs. Every answer must be ' +
      'well-formed GraphQL (a JSON object with `data` and/or `errors`, every error with a message and a known ' +
      '`extensions.code`, no stack trace, no secret; `data` on every 200, `errors` on every other status, no 5xx but the 503 `SERVICE_UNAVAILABLE` of a refusal for load: an operation past `MAX_OPERATIONS_IN_FLIGHT`, or a body or answers past `MAX_BODY_BYTES_IN_FLIGHT` or `MAX_ANSWER_BYTES_IN_FLIGHT`); ' +
      'an answer must also be for the question asked (the account or token requested). The run fails on any ' +
      'malformed or wrong answer, a request without an answer (30 s) or a broken connection that the client did ' +
      'not cause, a crash of the gateway or its process no longer answering the memory queries (10 s), or unbounded memory: peak RSS over the last window of load above ' +
      `2 × the peak RSS over the first window after warm-up + ${MiB(RSS_MARGIN_BYTES)}, or the memory left after a ` +
      `full GC once the load has drained (heap used and external: the Buffers its objects hold) above 2 × the same after a full GC at the end of warm-up + ${MiB(HEAP_MARGIN_BYTES)}, ` +
      `or handles left behind: the gateway's open handles (\`process.getActiveResourcesInfo()\`: timers, sockets, servers, file requests), or its open file descriptors (Linux), once the load has ended and its clients have hung up ` +
      `above their count once it was ready, before the load, + ${HANDLE_ALLOWANCE} (asked again every half second for up to ${HANDLE_SETTLE_MS / 1000} s, while its kept-alive sockets go). ` +
      '`INTERNAL_SERVER_ERROR` answers are well-formed but listed as findings.',
  );
  lines.push('');
  lines.push(`Re-run: \`npm run soak -- --duration ${settings.durationS} --warmup ${settings.warmupS} --connections ${settings.connections} --out docs/soak.md\` (without \`--out\` the report is only printed; \`npm run soak -- --help\` lists the options).`);
  lines.push('');
  lines.push(`## Result: ${outcome.failures.length === 0 ? 'PASS' : 'FAIL'}`);
  lines.push('');
  for (const failure of outcome.failures) lines.push(`- ${failure}`);
  if (outcome.failures.length === 0) lines.push('- no crash, no malformed or wrong answer, every request answered, memory bounded, no open handles left behind');
  lines.push('');
  lines.push('## Run');
  lines.push('');
  lines.push(
    table(
      ['setting', 'value'],
      [
        ['date', outcome.startedAt.toISOString()],
        ['machine', `${cpu.length} CPU (${cpu[0]?.model.trim() ?? 'unknown'}), shared with other work`],
        ['load average before / after (1 min)', `${outcome.loadBefore[0]!.toFixed(2)} / ${outcome.loadAfter[0]!.toFixed(2)}`],
        ['Node.js', process.version],
        ['duration (load)', `${settings.durationS} s (measured ${outcome.elapsedS.toFixed(1)} s), warm-up ${settings.warmupS} s`],
        ['concurrent clients', settings.connections],
        ['request cap', settings.maxRequests],
        ['gateway', `child process (node flags of npm start: ${startNodeFlags().join(' ')}), UPSTREAM_TIMEOUT_MS=${settings.upstreamTimeoutMs}, upstream in-flight cap ${settings.maxInFlight}, log level warn`],
        ['data', `${settings.accounts} accounts (1–3 sources each, half with 2 account-level tokens), ${settings.usedTokens} used connect tokens over them, ${settings.unusedTokens} unused`],
      ],
    ),
  );
  lines.push('');
  lines.push('Faults injected by the emulator throughout:');
  lines.push('');
  for (const fault of FAULT_DESCRIPTION) lines.push(`- ${fault}`);
  lines.push('');
  lines.push('## Requests');
  lines.push('');
  lines.push(
    table(
      ['figure', 'value'],
      [
        ['requests sent', totals.sent],
        ['answered (requests served)', `${totals.answered} (${(totals.answered / outcome.elapsedS).toFixed(0)}/s)`],
        ['aborted by the client on purpose', totals.abortedOnPurpose],
        ['malformed answers', totals.malformed],
        ['wrong answers', totals.wrong],
        ['no answer within 30 s', totals.noAnswer],
        ['connection errors not caused by the client', totals.transportErrors],
        ['latency p50 / p90 / p99 / max (answered)', `${ms(percentile(all, 50))} / ${ms(percentile(all, 90))} / ${ms(percentile(all, 99))} / ${ms(all.at(-1) ?? Number.NaN)}`],
      ],
    ),
  );
  lines.push('');
  lines.push('### Answers by HTTP status');
  lines.push('');
  lines.push(table(['status', 'answers'], [...totals.byStatus].sort((a, b) => a[0] - b[0])));
  lines.push('');
  lines.push('### Errors by code');
  lines.push('');
  lines.push('One answer may carry several errors (a fan-out over several failing accounts).');
  lines.push('');
  lines.push(table(['extensions.code', 'errors'], sortedCounts(totals.byCode)));
  lines.push('');
  lines.push('### By kind of request');
  lines.push('');
  lines.push(
    table(
      ['kind', 'sent', 'answered', 'aborted', 'p50', 'p99', 'outcomes (answers without errors: ok; else errors by code)'],
      [...totals.byKind].map(([kind, s]) => {
        const sorted = [...s.latenciesMs].sort((a, b) => a - b);
        const outcomes = sortedCounts(s.codes)
          .map(([code, n]) => `${code} ${n}`)
          .join(', ');
        return [kind, s.sent, s.answered, s.aborted, ms(percentile(sorted, 50)), ms(percentile(sorted, 99)), outcomes || '–'];
      }),
    ),
  );
  lines.push('');
  lines.push('## Gateway memory');
  lines.push('');
  const window = `${memory.windowS} s`;
  lines.push(
    table(
      ['figure', 'value'],
      [
        ['RSS at the end of warm-up', memory.warmup ? MiB(memory.warmup.rssBytes) : '–'],
        [`peak RSS, first ${window} after warm-up (start)`, MiB(memory.startPeak)],
        [`peak RSS, last ${window} of load (end)`, MiB(memory.endPeak)],
        ['limit on the end peak', MiB(2 * memory.startPeak + RSS_MARGIN_BYTES)],
        ['RSS trend after warm-up (least squares)', `${memory.slopeMiBPerMin.toFixed(1)} MiB/min`],
        ['peak RSS of the process (VmHWM)', memory.end ? MiB(memory.end.maxRssBytes) : '–'],
        [
          'load drained, before GC: heap used / heap total / external / array buffers',
          memory.end ? [memory.end.heapUsedBytes, memory.end.heapTotalBytes, memory.end.externalBytes, memory.end.arrayBuffersBytes].map(MiB).join(' / ') : '–',
        ],
        [
          'load drained, after full GC: RSS / heap used / heap total / external',
          memory.drainedGc ? [memory.drainedGc.rssBytes, memory.drainedGc.heapUsedBytes, memory.drainedGc.heapTotalBytes, memory.drainedGc.externalBytes].map(MiB).join(' / ') : '–',
        ],
        ['heap after full GC: end of warm-up / load drained', `${memory.warmup ? MiB(memory.warmup.heapUsedBytes) : '–'} / ${memory.drainedGc ? MiB(memory.drainedGc.heapUsedBytes) : '–'}`],
        ['heap used + external after full GC (judged): end of warm-up / load drained', `${memory.warmup ? MiB(liveBytes(memory.warmup)) : '–'} / ${memory.drainedGc ? MiB(liveBytes(memory.drainedGc)) : '–'}`],
      ],
    ),
  );
  lines.push('');
  const series = memory.samples.filter((_, i) => i % Math.max(1, Math.ceil(memory.samples.length / 12)) === 0);
  lines.push(
    `Heap after full GC over time: ${memory.gcSamples.map((s, i) => `${s.atS.toFixed(0)} s${i === memory.gcSamples.length - 1 && memory.drainedGc ? ' (drained)' : ''} ${(s.heapUsedBytes / 1024 / 1024).toFixed(0)}`).join(', ')} (MiB).`,
  );
  lines.push('');
  lines.push(`RSS over time: ${series.map((s) => `${s.atS.toFixed(0)} s ${(s.rssBytes / 1024 / 1024).toFixed(0)}`).join(', ')} (MiB).`);
  lines.push('');
  lines.push('## Gateway open handles');
  lines.push('');
  const { before, after } = outcome.handles;
  const byType = (stats: MemoryStats | undefined) =>
    stats
      ? `${handleCount(stats)} (${Object.entries(stats.handles)
          .sort((a, b) => b[1] - a[1])
          .map(([type, n]) => `${type} ${n}`)
          .join(', ')})`
      : '–';
  lines.push(
    table(
      ['figure', 'value'],
      [
        ['once ready, before the load (baseline)', byType(before)],
        ['most during the load (sampled each second)', outcome.handles.peakDuringLoad || '–'],
        [`once the load had ended and its clients had hung up (${outcome.handles.afterS.toFixed(1)} s later)`, byType(after)],
        ['limit once the load had ended', before ? handleCount(before) + HANDLE_ALLOWANCE : '–'],
        ['open file descriptors: before the load / once it had ended / limit', before && after && before.openFds >= 0 ? `${before.openFds} / ${after.openFds} / ${before.openFds + HANDLE_ALLOWANCE}` : '–'],
        ['grown by type', before && after ? handleGrowth(before, after) : '–'],
      ],
    ),
  );
  lines.push('');
  lines.push('## Upstream (emulator)');
  lines.push('');
  lines.push(
    table(
      ['figure', 'value'],
      [
        ['requests reaching the emulator', upstream.requests],
        ['by status (0: no answer, the gateway gave up or hung up)', sortedCounts(upstream.byStatus).map(([s, n]) => `${s}: ${n}`).join(', ')],
        ['peak in flight (hanging ones included)', `${upstream.peakInFlight} (gateway cap ${settings.maxInFlight})`],
      ],
    ),
  );
  lines.push('');
  lines.push('## Gateway log (level warn and above)');
  lines.push('');
  lines.push(gateway.logCounts.size === 0 ? 'No lines.' : table(['line', 'count'], sortedCounts(gateway.logCounts).slice(0, 15)));
  lines.push('');
  const findings: Array<[string, string[]]> = [
    ['Malformed answers', totals.samples.malformed],
    ['Wrong answers', totals.samples.wrong],
    ['Unanswered requests and connection errors', totals.samples.transport],
    ['INTERNAL_SERVER_ERROR answers', totals.samples.internal],
    ['Gateway log lines above warn', gateway.errorSamples],
  ];
  if (findings.some(([, list]) => list.length > 0)) {
    lines.push('## Samples (first 5 of each)');
    lines.push('');
    for (const [title, list] of findings) {
      if (list.length === 0) continue;
      lines.push(`### ${title}`);
      lines.push('');
      for (const item of list) lines.push(`    ${item.replace(/\n/g, ' ')}`);
      lines.push('');
    }
  }
  return `${lines.join('\n')}\n`;
}

export function slope(samples: MemorySample[]): number {
  if (samples.length < 2) return 0;
  const n = samples.length;
  const mx = samples.reduce((s, p) => s + p.atS, 0) / n;
  const my = samples.reduce((s, p) => s + p.rssBytes, 0) / n;
  const num = samples.reduce((s, p) => s + (p.atS - mx) * (p.rssBytes - my), 0);
  const den = samples.reduce((s, p) => s + (p.atS - mx) ** 2, 0);
  return den === 0 ? 0 : (num / den / 1024 / 1024) * 60;
}
