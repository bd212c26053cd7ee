import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Contender } from '../../bench/contender.ts';
import { targets, type CpuRounds, type Row } from '../../bench/report.ts';
import { scenarios } from '../../bench/scenarios.ts';

/**
 * The targets table at the top of bench/results.md: each verdict is judged on the exact figure, and the figure shown
 * beside it must not say the opposite. Rounded to the nearest, a throughput of 1.248 × the naive baseline's read
 * "(1.25 ×)" beside "no" for a target of at least 1.25 ×, as a run on a busy machine printed it (684 vs 548 req/s).
 */

const fanout = scenarios.find((s) => s.id === 'fanout')!;
const row = (contender: Contender, latencyMs: number, figures: Partial<Row> = {}): Row => ({
  scenario: fanout,
  contender,
  latencyMs,
  rps: 100,
  p50: 40,
  p99: 80,
  p50Alone: 40,
  operations: 500,
  upstreamPerOp: 21,
  upstreamPerOpUnderLoad: 21,
  roundTrips: 2,
  cpuMicrosPerOp: 4000,
  peakRssBytes: 200 * 1024 * 1024,
  ...figures,
});

/** The targets table's line whose target starts with `start`, as its measured text and its verdict. */
function line(report: string, start: string): { measured: string; met: string } {
  const found = report.split('\n').find((l) => l.startsWith(`| ${start}`));
  assert.ok(found, `no target line starting with ${start} in:\n${report}`);
  const [, measured, met] = found.split(' | ').map((cell) => cell.replace(/^\| | \|$/g, ''));
  return { measured: measured!, met: met! };
}

/** Just past each threshold, on the failing side. */
function justMissed(): string {
  const rows = [row('gateway', 20, { p50Alone: 50.04, p50: 50 }), row('direct', 20, { p50Alone: 52 })];
  const rounds: CpuRounds = new Map([
    ['gateway', { cpu: [236], rps: [684] }],
    ['bare', { cpu: [157.2], rps: [5000] }],
    ['naive', { cpu: [600], rps: [548] }],
  ]);
  return targets(rows, rounds, { connections: 10, maxInFlight: 256 });
}

test('a throughput just short of 1.25 × the naive baseline’s is not shown as 1.25 × beside its “no”', () => {
  const { measured, met } = line(justMissed(), 'scenario 1 at 0 ms: gateway throughput');
  assert.equal(met, '**no**');
  const shown = Number(/\(([\d.]+) ×\)/.exec(measured)?.[1]);
  assert.ok(shown < 1.25, `the figure shown (${measured}) says the target was met`);
});

test('a CPU just above 1.5 × bare Apollo’s is not shown as 1.50 × beside its “no”', () => {
  const { measured, met } = line(justMissed(), 'scenario 1 at 0 ms: gateway CPU/op');
  assert.equal(met, '**no**');
  const shown = Number(/\(([\d.]+) ×\)/.exec(measured)?.[1]);
  assert.ok(shown > 1.5, `the figure shown (${measured}) says the target was met`);
});

test('a fan-out p50 just above 50 ms is not shown as 50.0 ms beside its “no”', () => {
  const { measured, met } = line(justMissed(), 'fan-out p50 at 20 ms');
  assert.equal(met, '**no**');
  const shown = Number(/^([\d.]+) ms/.exec(measured)?.[1]);
  assert.ok(shown > 50, `the figure shown (${measured}) says the target was met`);
});

test('figures just inside each threshold are shown inside it beside their “yes”', () => {
  const rows = [row('gateway', 20, { p50Alone: 49.96, p50: 50 }), row('direct', 20)];
  const rounds: CpuRounds = new Map([
    ['gateway', { cpu: [235.7], rps: [685] }],
    ['bare', { cpu: [157.2], rps: [5000] }],
    ['naive', { cpu: [600], rps: [548] }],
  ]);
  const report = targets(rows, rounds, { connections: 10, maxInFlight: 256 });
  for (const [start, pattern, inside] of [
    ['scenario 1 at 0 ms: gateway throughput', /\(([\d.]+) ×\)/, (x: number) => x >= 1.25],
    ['scenario 1 at 0 ms: gateway CPU/op', /\(([\d.]+) ×\)/, (x: number) => x <= 1.5],
    ['fan-out p50 at 20 ms', /^([\d.]+) ms/, (x: number) => x <= 50],
    ['the same under load', /^([\d.]+) ms/, (x: number) => x <= 50],
  ] as const) {
    const { measured, met } = line(report, start);
    assert.equal(met, 'yes', start);
    assert.ok(inside(Number(pattern.exec(measured)?.[1])), `${start}: the figure shown (${measured}) says the target was missed`);
  }
});
