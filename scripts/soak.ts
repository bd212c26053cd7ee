import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';
import { startEmulator } from '../src/emulator/index.ts';
import { writeAtomically } from '../src/support/atomic-file.ts';
import { bump, run, totals } from './soak/client.ts';
import { GatewayStartFailure, handleCount, handlesLeftBehind, liveBytes, startGatewayChild, type GatewayChild, type MemoryStats } from './soak/gateway.ts';
import { report, slope, type MemorySample } from './soak/report.ts';
import { pickScenario, undeleted } from './soak/scenarios.ts';
import { CLIENT_TIMEOUT_MS, HANDLE_POLL_MS, HANDLE_SETTLE_MS, HEAP_MARGIN_BYTES, MiB, outFile, RSS_MARGIN_BYTES, settings } from './soak/settings.ts';
import { injectFaults, seed } from './soak/upstream.ts';

/**
 * `npm run soak`: the gateway under sustained mixed load while its upstream misbehaves.
 *
 * The emulator runs in this process (so faults can be steered) and the gateway in a child process (so its
 * memory and a crash are its own). Many concurrent clients send a mix of reads, fan-outs, mutations,
 * refused operations and requests they abort mid-flight, for a bounded time and a bounded number of
 * requests, on loopback only. Every answer is checked to be well-formed GraphQL. Exit 1 when an answer is
 * malformed or wrong, a request gets no answer, the gateway is not ready within --ready-timeout (30 s), crashes or stops answering,
 * or its memory grows without bound (see MEMORY RULE in soak/settings.ts), or the load leaves handles open in it (timers,
 * sockets, files: see HANDLE RULE). `--out docs/soak.md` writes the report.
 *
 * Its parts, in scripts/soak/: the command line and settings, the seeded upstream and its faults, the
 * gateway's child process, the clients and their checks, the scenarios, and the report.
 */

async function main(): Promise<number> {
  const startedAt = new Date();
  const loadBefore = loadavg();
  run.consumerSecret = randomBytes(16).toString('hex');
  const emulator = await startEmulator({ port: 0, host: '127.0.0.1', seed: 'none', consumerKey: 'soak-key', consumerSecret: run.consumerSecret });
  let gateway: GatewayChild | undefined;
  let stopFaults: (() => void) | undefined;
  let interrupted = false;
  const onSignal = () => {
    if (interrupted) return;
    interrupted = true;
    run.stopping = true;
    console.error('soak: interrupted, stopping');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const timers: NodeJS.Timeout[] = [];
  try {
    const data = seed(emulator);
    gateway = await startGatewayChild(emulator);
    const child = gateway;
    // A process that no longer answers (stuck) fails the run: its memory and handles are then unknown.
    let unanswered: string | undefined;
    const saidUnanswered = (error: unknown) => {
      if (!child.crashed) unanswered = error instanceof Error ? error.message : String(error);
      return undefined;
    };
    // The HANDLE RULE's baseline: the gateway's open handles once it is ready, before any load.
    const handlesBefore = await child.call('stats').catch(saidUnanswered);
    run.pool = new Pool(gateway.origin, { connections: settings.connections, pipelining: 1, headersTimeout: CLIENT_TIMEOUT_MS, bodyTimeout: CLIENT_TIMEOUT_MS });
    stopFaults = injectFaults(emulator, data);
    console.log(
      `soak: gateway ${gateway.url} (pid ${gateway.process.pid}), upstream ${emulator.url}; ${settings.connections} clients for ${settings.durationS} s, at most ${settings.maxRequests} requests`,
    );

    // The upstream log is tallied and emptied every second, so it stays small.
    const upstream = { requests: 0, byStatus: new Map<number, number>(), peakInFlight: 0 };
    const tallyUpstream = () => {
      for (const entry of emulator.requests) bump(upstream.byStatus, entry.status);
      upstream.requests += emulator.requests.length;
      emulator.clearRequests();
    };
    timers.push(setInterval(tallyUpstream, 1_000));

    const started = performance.now();
    const elapsed = () => (performance.now() - started) / 1000;
    const samples: MemorySample[] = [];
    const gcSamples: MemorySample[] = [];
    let warmup: MemoryStats | undefined;
    let sampling = false;
    timers.push(
      setInterval(() => {
        if (sampling || child.crashed) return;
        sampling = true;
        const atS = elapsed();
        const atWarmup = warmup === undefined && atS >= settings.warmupS;
        // A full GC at the end of warm-up and every 10 s after: the live heap's trend, garbage aside.
        const collect = atWarmup || (warmup !== undefined && atS - (gcSamples.at(-1)?.atS ?? 0) >= 10);
        child
          .call(collect ? 'gc' : 'stats')
          .then((stats) => {
            if (atWarmup) warmup = stats;
            samples.push({ atS, rssBytes: stats.rssBytes, heapUsedBytes: stats.heapUsedBytes, handles: handleCount(stats) });
            if (collect) gcSamples.push({ atS, rssBytes: stats.rssBytes, heapUsedBytes: stats.heapUsedBytes });
          })
          .catch(() => undefined)
          .finally(() => (sampling = false));
      }, 1_000),
    );
    let lastPrint = 0;
    timers.push(
      setInterval(() => {
        const atS = elapsed();
        const rate = (totals.answered - lastPrint) / 5;
        lastPrint = totals.answered;
        const rss = samples.at(-1);
        console.log(
          `soak: ${atS.toFixed(0).padStart(3)} s  sent ${totals.sent}  answered ${totals.answered} (${rate.toFixed(0)}/s)  aborted ${totals.abortedOnPurpose}  malformed ${totals.malformed}  wrong ${totals.wrong}  failed ${totals.noAnswer + totals.transportErrors}  gateway RSS ${rss ? MiB(rss.rssBytes) : '–'}`,
        );
      }, 5_000),
    );
    timers.push(setTimeout(() => (run.stopping = true), settings.durationS * 1000));

    const worker = async () => {
      while (!run.stopping && !child.crashed) await pickScenario().run(data);
    };
    await Promise.all(Array.from({ length: settings.connections }, worker));
    const elapsedS = elapsed();
    for (const timer of timers) clearInterval(timer);
    stopFaults();
    stopFaults = undefined;

    // Tokens the load created and could not delete (the delete failed under faults) go directly.
    for (const token of undeleted.splice(0)) emulator.store.deleteConnectToken(token);

    const windowS = Math.max(5, Math.min(10, Math.floor((elapsedS - settings.warmupS) / 4)));
    const peak = (from: number, to: number) => Math.max(0, ...samples.filter((s) => s.atS >= from && s.atS <= to).map((s) => s.rssBytes));
    const after = samples.filter((s) => s.atS >= settings.warmupS);
    let end: MemoryStats | undefined;
    let drainedGc: MemoryStats | undefined;
    if (!child.crashed) {
      try {
        end = await child.call('stats');
        drainedGc = await child.call('gc');
      } catch (error) {
        saidUnanswered(error);
      }
    }
    // The HANDLE RULE's second count: the clients gone and the gateway idle, its kept-alive sockets given the time to go.
    await run.pool.close();
    let handlesAfter: MemoryStats | undefined;
    const settleFrom = performance.now();
    // An interrupted run (Ctrl-C) is not kept waiting for it.
    if (handlesBefore && drainedGc && !child.crashed && !interrupted) {
      const settleBy = performance.now() + HANDLE_SETTLE_MS;
      try {
        for (;;) {
          await sleep(HANDLE_POLL_MS);
          handlesAfter = await child.call('stats');
          if (handlesLeftBehind(handlesBefore, handlesAfter).length === 0 || performance.now() >= settleBy) break;
        }
      } catch (error) {
        saidUnanswered(error);
      }
    }
    tallyUpstream();
    upstream.peakInFlight = emulator.peakInFlight;
    if (drainedGc) gcSamples.push({ atS: elapsed(), rssBytes: drainedGc.rssBytes, heapUsedBytes: drainedGc.heapUsedBytes });
    const memory = {
      samples,
      gcSamples,
      warmup,
      startPeak: peak(settings.warmupS, settings.warmupS + windowS),
      endPeak: peak(elapsedS - windowS, elapsedS),
      windowS,
      end,
      drainedGc,
      slopeMiBPerMin: slope(after),
    };

    const handles = { before: handlesBefore, after: handlesAfter, afterS: (performance.now() - settleFrom) / 1000, peakDuringLoad: Math.max(0, ...samples.map((s) => s.handles ?? 0)) };

    const failures: string[] = [];
    if (interrupted) failures.push('interrupted before the end');
    if (child.crashed) failures.push(`the gateway process crashed: ${child.crashed}`);
    if (unanswered) failures.push(unanswered);
    if (totals.malformed > 0) failures.push(`${totals.malformed} malformed answers`);
    if (totals.wrong > 0) failures.push(`${totals.wrong} wrong answers`);
    if (totals.noAnswer > 0) failures.push(`${totals.noAnswer} requests without an answer within ${CLIENT_TIMEOUT_MS} ms`);
    if (totals.transportErrors > 0) failures.push(`${totals.transportErrors} connection errors the client did not cause`);
    if (!warmup || memory.startPeak === 0 || memory.endPeak === 0) failures.push('too few memory samples to judge memory (run longer)');
    else if (memory.endPeak > 2 * memory.startPeak + RSS_MARGIN_BYTES) {
      failures.push(`RSS grew without bound: end peak ${MiB(memory.endPeak)} > 2 × ${MiB(memory.startPeak)} + ${MiB(RSS_MARGIN_BYTES)}`);
    }
    if (warmup && drainedGc && liveBytes(drainedGc) > 2 * liveBytes(warmup) + HEAP_MARGIN_BYTES) {
      failures.push(`memory left after a full GC (heap used and external) grew: ${MiB(liveBytes(drainedGc))} > 2 × ${MiB(liveBytes(warmup))} + ${MiB(HEAP_MARGIN_BYTES)}`);
    }

    if (handlesBefore && handlesAfter) failures.push(...handlesLeftBehind(handlesBefore, handlesAfter));

    await child.stop();
    // A crash during shutdown counts too.
    if (child.crashed && !failures.some((f) => f.startsWith('the gateway process crashed'))) failures.push(`the gateway process crashed: ${child.crashed}`);

    const text = report({ failures, elapsedS, memory, handles, upstream, gateway: child, loadBefore, loadAfter: loadavg(), startedAt });
    console.log(`\n${text}`);
    if (outFile) {
      const out = resolve(outFile);
      // Whole or not at all (a temporary file renamed over it), its folder made as the emulator's data file's is: Node
      // 20's own mkdir -p spun for ever on one that cannot be made (/proc/nope), and the run hung, deaf to Ctrl-C.
      try {
        await writeAtomically(out, text);
      } catch (error) {
        console.error(`soak: the report could not be written to ${out}: ${error instanceof Error ? error.message : String(error)}`);
        return 1;
      }
      console.log(`soak: report written to ${out}`);
    }
    return failures.length === 0 ? 0 : 1;
  } finally {
    for (const timer of timers) clearInterval(timer);
    stopFaults?.();
    await run.pool?.destroy().catch(() => undefined);
    await gateway?.stop();
    await emulator.close();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    // A gateway that could not be started is an outcome of the run, said as such; anything else is a bug here.
    const said = error instanceof GatewayStartFailure ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error);
    console.error(`soak: ${said}`);
    process.exit(1);
  },
);
