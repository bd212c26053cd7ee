import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CallVerdicts, CircuitBreaker, Probe, type BreakerPermit } from '../../src/upstream/breaker.ts';
import { withWallClockAhead } from '../helpers/clock.ts';

/** The permit asked for, which must be a half-open circuit's probe. */
const probeOf = (permit: BreakerPermit | undefined): Probe => {
  assert.ok(permit instanceof Probe, `a probe, not ${String(permit)}`);
  return permit;
};

describe('circuit breaker states', () => {
  const make = () => {
    const clock = { now: 0 };
    const changes: string[] = [];
    const breaker = new CircuitBreaker({ failureThreshold: 3, cooldownMs: 1_000, now: () => clock.now, onChange: (s) => changes.push(s) });
    return { breaker, clock, changes };
  };

  it('opens after the threshold of consecutive failures, and a success in between resets the count', () => {
    const { breaker } = make();
    breaker.recordFailure('call');
    breaker.recordFailure('call');
    breaker.recordSuccess('call');
    breaker.recordFailure('call');
    breaker.recordFailure('call');
    assert.equal(breaker.state, 'closed');
    // Any answer of the upstream's resets it too, one that is no success (a 404, a 429: docs/configuration.md).
    breaker.recordSuccess('call', false);
    breaker.recordFailure('call');
    breaker.recordFailure('call');
    assert.equal(breaker.state, 'closed');
    breaker.recordFailure('call');
    assert.equal(breaker.state, 'open');
    assert.equal(breaker.tryAcquire(), undefined);
    assert.equal(breaker.retryInMs(), 1_000);
  });

  it('lets exactly one probe through after the cooldown; its success closes, its failure reopens', () => {
    const { breaker, clock, changes } = make();
    for (let i = 0; i < 3; i++) breaker.recordFailure('call');
    clock.now = 1_000;
    const first = probeOf(breaker.tryAcquire());
    assert.equal(breaker.state, 'half-open');
    assert.equal(breaker.tryAcquire(), undefined, 'a second caller does not probe at the same time');
    breaker.recordFailure(first);
    assert.equal(breaker.state, 'open');
    clock.now = 2_000;
    breaker.recordSuccess(probeOf(breaker.tryAcquire()));
    assert.equal(breaker.state, 'closed');
    assert.equal(breaker.tryAcquire(), 'call');
    assert.deepEqual(changes, ['open', 'half-open', 'open', 'half-open', 'closed']);
  });

  it('frees the probe slot when the probing call ends without a verdict', () => {
    const { breaker, clock } = make();
    for (let i = 0; i < 3; i++) breaker.recordFailure('call');
    clock.now = 1_000;
    breaker.release(probeOf(breaker.tryAcquire()));
    probeOf(breaker.tryAcquire());
  });

  it('leaves the verdict to the probe when a call let through before the circuit opened fails while it is out', () => {
    const { breaker, clock } = make();
    const early = breaker.tryAcquire()!;
    for (let i = 0; i < 3; i++) breaker.recordFailure('call');
    clock.now = 1_000;
    const probe = probeOf(breaker.tryAcquire());
    breaker.recordFailure(early); // old news of the outage already known: no reopening…
    assert.equal(breaker.state, 'half-open');
    assert.ok(breaker.isCurrentProbe(probe), 'the probe out keeps its slot');
    assert.equal(breaker.tryAcquire(), undefined, '…and still one probe at a time');
    breaker.recordSuccess(probe);
    assert.equal(breaker.state, 'closed');
  });

  it('keeps the probe slot taken when a call let through before the circuit opened ends without a verdict', () => {
    const { breaker, clock } = make();
    const early = breaker.tryAcquire();
    assert.equal(early, 'call');
    for (let i = 0; i < 3; i++) breaker.recordFailure('call');
    clock.now = 1_000;
    probeOf(breaker.tryAcquire());
    breaker.release(early!); // e.g. its caller went away
    assert.equal(breaker.tryAcquire(), undefined, 'still one probe at a time');
  });

  it('gives up on a probe out for longer than the cooldown (lost to a hanging connection): the next call probes in its place', () => {
    const { breaker, clock, changes } = make();
    for (let i = 0; i < 3; i++) breaker.recordFailure('call');
    clock.now = 1_000;
    const lost = probeOf(breaker.tryAcquire());
    clock.now = 1_999;
    assert.equal(breaker.tryAcquire(), undefined, 'within the cooldown the probe out keeps its slot');
    clock.now = 2_000;
    const next = probeOf(breaker.tryAcquire());
    assert.notEqual(next, lost);
    // The lost probe's end, whatever it is, does not free the slot of the one out now…
    breaker.release(lost);
    assert.equal(breaker.tryAcquire(), undefined, 'one probe at a time');
    breaker.recordFailure(lost, { timedOut: true }); // its failure reopens the circuit…
    assert.equal(breaker.state, 'open');
    clock.now = 2_999;
    assert.equal(breaker.tryAcquire(), undefined);
    // …and the one out now closes it when it answers.
    breaker.recordSuccess(next);
    assert.equal(breaker.state, 'closed');
    assert.deepEqual(changes, ['open', 'half-open', 'open', 'closed']);
  });

  it('lets no more than one probe given up on run beside the current one: against an upstream that hangs they would pile up', () => {
    const { breaker, clock } = make();
    for (let i = 0; i < 3; i++) breaker.recordFailure('call');
    clock.now = 1_000;
    const first = probeOf(breaker.tryAcquire());
    clock.now = 2_000;
    const second = probeOf(breaker.tryAcquire());
    assert.ok(breaker.isCurrentProbe(second) && !breaker.isCurrentProbe(first) && !breaker.isCurrentProbe('call'), 'the second probe is current; the first and an ordinary call are not');
    clock.now = 5_000;
    assert.equal(breaker.tryAcquire(), undefined, 'two probes out, neither answered: no third');
    breaker.release(first);
    const third = probeOf(breaker.tryAcquire());
    assert.ok(breaker.isCurrentProbe(third), 'the third probe is current');
  });

  it('lets only the probe holding the way go out once its turn for a connection comes: not one given up on while it waited', () => {
    const { breaker, clock } = make();
    assert.ok(breaker.mayGoOut('call'), 'a call goes out while the circuit is closed');
    for (let i = 0; i < 3; i++) breaker.recordFailure('call');
    assert.ok(!breaker.mayGoOut('call'), 'a call let through before the circuit opened');
    clock.now = 1_000;
    const givenUp = probeOf(breaker.tryAcquire());
    assert.ok(breaker.mayGoOut(givenUp), 'the probe goes out');
    clock.now = 2_000;
    const inItsPlace = probeOf(breaker.tryAcquire());
    assert.ok(!breaker.mayGoOut(givenUp), 'another was let through in its place');
    assert.ok(breaker.mayGoOut(inItsPlace), 'the probe in its place goes out');
    assert.ok(!breaker.mayGoOut('call'), 'an ordinary call does not go out while the circuit is half-open');
    breaker.recordSuccess(inItsPlace);
    assert.ok(breaker.mayGoOut(givenUp), 'once the circuit has closed, an ordinary call');
  });

  it('forgets the probes still out when it closes: the next half-open circuit has its own', () => {
    const { breaker, clock } = make();
    for (let i = 0; i < 3; i++) breaker.recordFailure('call');
    clock.now = 1_000;
    const lost = probeOf(breaker.tryAcquire());
    clock.now = 2_000;
    const answered = probeOf(breaker.tryAcquire());
    breaker.recordSuccess(answered);
    assert.equal(breaker.state, 'closed');
    assert.ok(!breaker.isCurrentProbe(lost) && !breaker.isCurrentProbe(answered), 'no probe is current once the circuit has closed');
    for (let i = 0; i < 3; i++) breaker.recordFailure('call');
    clock.now = 3_000;
    const again = probeOf(breaker.tryAcquire());
    clock.now = 4_000;
    probeOf(breaker.tryAcquire()); // in place of `again`, though `lost` is still out
    breaker.release(lost); // …and its end changes nothing
    assert.ok(!breaker.isCurrentProbe(again), 'a probe replaced is not current');
    assert.equal(breaker.tryAcquire(), undefined);
  });

  it('takes a probe still out when it closed for an ordinary call: failing during the next half-open circuit, it does not reopen it', () => {
    const { breaker, clock, changes } = make();
    for (let i = 0; i < 3; i++) breaker.recordFailure('call');
    clock.now = 1_000;
    const lost = probeOf(breaker.tryAcquire());
    clock.now = 2_000;
    breaker.recordSuccess(probeOf(breaker.tryAcquire()));
    for (let i = 0; i < 3; i++) breaker.recordFailure('call');
    clock.now = 3_000;
    const trial = probeOf(breaker.tryAcquire());
    // Let through before the circuit opened again: news of the outage already known, not the trial's verdict.
    breaker.recordFailure(lost);
    assert.equal(breaker.state, 'half-open', changes.join(' '));
    breaker.recordSuccess(trial);
    assert.equal(breaker.state, 'closed');
  });

  it('reopens against an upstream that hangs longer than the cooldown, though every probe is given up on before it fails', () => {
    const { breaker, clock, changes } = make();
    const timeoutMs = 2_000;
    for (let i = 0; i < 3; i++) breaker.recordFailure('call');
    const out: { probe: Probe; endsAt: number }[] = [];
    for (clock.now = 1_000; clock.now <= 21_000; clock.now += 100) {
      for (const o of out.filter((o) => o.endsAt <= clock.now)) {
        breaker.recordFailure(o.probe, { timedOut: true });
        out.splice(out.indexOf(o), 1);
      }
      const permit = breaker.tryAcquire();
      if (permit instanceof Probe) out.push({ probe: permit, endsAt: clock.now + timeoutMs });
    }
    assert.ok(changes.filter((c) => c === 'open').length > 3, changes.join(' '));
  });

  it('says which failure opened it, and how long it was not closed when it closes', () => {
    const { clock } = make();
    const details: unknown[] = [];
    const breaker = new CircuitBreaker({ failureThreshold: 2, cooldownMs: 1_000, now: () => clock.now, onChange: (state, detail) => details.push({ state, ...detail }) });
    breaker.recordFailure('call', { status: 502 });
    breaker.recordFailure('call', { status: 504, path: '/accounts/a' });
    clock.now = 1_000;
    breaker.recordFailure(probeOf(breaker.tryAcquire()), { code: 'ECONNREFUSED' });
    clock.now = 2_500;
    breaker.recordSuccess(probeOf(breaker.tryAcquire()));
    assert.deepEqual(details, [
      { state: 'open', cause: { status: 504, path: '/accounts/a' } },
      { state: 'half-open' },
      { state: 'open', cause: { code: 'ECONNREFUSED' } },
      { state: 'half-open' },
      { state: 'closed', openForMs: 2_500 },
    ]);
  });

  it('says how long it was not closed from when it first opened, not from the clock’s start, a reopening from half-open included', () => {
    const { clock } = make();
    const details: unknown[] = [];
    const breaker = new CircuitBreaker({ failureThreshold: 1, cooldownMs: 1_000, now: () => clock.now, onChange: (state, detail) => details.push({ state, ...detail }) });
    clock.now = 60_000;
    breaker.recordFailure('call');
    clock.now = 61_000;
    breaker.recordFailure(probeOf(breaker.tryAcquire()));
    clock.now = 62_500;
    breaker.recordSuccess(probeOf(breaker.tryAcquire()));
    assert.deepEqual(details.at(-1), { state: 'closed', openForMs: 2_500 });
  });

  it('keeps time with a monotonic clock: a wall clock stepped back an hour does not hold the circuit open', async () => {
    const breaker = new CircuitBreaker({ failureThreshold: 1, cooldownMs: 1_000 });
    breaker.recordFailure('call');
    await withWallClockAhead(-3_600_000, async () => assert.ok(breaker.retryInMs() <= 1_000, `open for ${breaker.retryInMs()} ms more`));
  });
});

describe('one call’s verdicts across its attempts', () => {
  const make = () => {
    const clock = { now: 0 };
    const breaker = new CircuitBreaker({ failureThreshold: 2, cooldownMs: 1_000, now: () => clock.now });
    return { breaker, clock };
  };

  it('counts a failure it retried once, when the call fails for good, however many attempts failed', () => {
    const { breaker } = make();
    const verdicts = new CallVerdicts(breaker);
    for (let attempt = 0; attempt < 5; attempt++) verdicts.failedRetrying(breaker.tryAcquire()!, { attempt }, true);
    assert.equal(breaker.state, 'closed', 'nothing counted while the call retries');
    verdicts.settle();
    assert.equal(breaker.state, 'closed', 'one failure of a threshold of two');
    const other = new CallVerdicts(breaker);
    other.failedRetrying(breaker.tryAcquire()!, { call: 2 }, true);
    other.noVerdict(breaker.tryAcquire()!); // its retry cancelled: the call failed for good
    assert.equal(breaker.state, 'open', 'the second call’s owed failure made two');
  });

  it('forgets a retried failure when a later attempt is answered, and counts one it will not retry at once', () => {
    const { breaker, clock } = make();
    const answered = new CallVerdicts(breaker);
    answered.failedRetrying(breaker.tryAcquire()!, {}, true);
    answered.answered(breaker.tryAcquire()!, 200);
    answered.settle();
    clock.now = 5_000; // past the second after it in which a failure is one path's (see below)
    const failed = new CallVerdicts(breaker);
    failed.failedRetrying(breaker.tryAcquire()!, {}, false);
    assert.equal(breaker.state, 'closed', 'the answered call’s failure was forgotten: one failure so far');
    failed.failed(breaker.tryAcquire()!, {});
    assert.equal(breaker.state, 'open');
  });

  it('does not count calls failing while the upstream served others after they went out, or within a second before: one path failing is not the upstream down', () => {
    const { breaker, clock } = make();
    // Two calls to a path that resets its connections go out; the upstream serves a call to another path
    // meanwhile; both then fail for good. Counted, they would open the circuit on the healthy upstream.
    const [first, second] = [new CallVerdicts(breaker), new CallVerdicts(breaker)];
    first.wentOut();
    second.wentOut();
    clock.now = 5;
    new CallVerdicts(breaker).answered(breaker.tryAcquire()!, 200);
    clock.now = 10;
    first.failedRetrying(breaker.tryAcquire()!, { call: 1 }, true);
    first.wentOut(); // its retry
    second.failed(breaker.tryAcquire()!, { call: 2 });
    first.settle();
    assert.equal(breaker.state, 'closed');
    // Calls that went out after it and fail fast, within a second of it: a path whose calls fail in a few
    // milliseconds fails between two successes when the rest of the traffic is sparse.
    const quick = [new CallVerdicts(breaker), new CallVerdicts(breaker), new CallVerdicts(breaker)];
    clock.now = 900;
    for (const call of quick) call.wentOut();
    clock.now = 1_004;
    for (const call of quick) call.failed(breaker.tryAcquire()!, {});
    assert.equal(breaker.state, 'closed');
    // A second after the last call served, with nothing served since they went out, they count: the upstream
    // serves nothing.
    const [third, fourth] = [new CallVerdicts(breaker), new CallVerdicts(breaker)];
    third.wentOut();
    fourth.wentOut();
    clock.now = 1_006;
    third.failed(breaker.tryAcquire()!, { call: 3 });
    fourth.failed(breaker.tryAcquire()!, { call: 4 });
    assert.equal(breaker.state, 'open');
  });

  it('excuses a retried call by what was served after its first request went out, not only after its last', () => {
    const { breaker, clock } = make();
    // Both go out, the upstream serves another call, both retry, and both fail for good over a second later.
    const calls = [new CallVerdicts(breaker), new CallVerdicts(breaker)];
    for (const call of calls) call.wentOut();
    clock.now = 5;
    new CallVerdicts(breaker).answered(breaker.tryAcquire()!, 200);
    clock.now = 10;
    for (const call of calls) {
      call.failedRetrying(breaker.tryAcquire()!, {}, true);
      call.wentOut(); // its retry
    }
    clock.now = 2_000;
    for (const call of calls) call.failed(breaker.tryAcquire()!, {});
    assert.equal(breaker.state, 'closed');
  });

  it('does not count a retried failure owed at its call’s end when the upstream served others after the call went out', () => {
    const { breaker, clock } = make();
    // Two calls to a path that resets its connections retry, the upstream serves another call meanwhile, and both
    // end on no verdict of their last attempt (cancelled, say): their owed failures are that path's, not an outage.
    const calls = [new CallVerdicts(breaker), new CallVerdicts(breaker)];
    for (const call of calls) call.wentOut();
    clock.now = 5;
    new CallVerdicts(breaker).answered(breaker.tryAcquire()!, 200);
    clock.now = 2_000;
    for (const call of calls) {
      call.failedRetrying(breaker.tryAcquire()!, {}, true);
      call.settle();
    }
    assert.equal(breaker.state, 'closed');
  });

  it('owes the retried failure of a probe still out when the circuit closed, as an ordinary call’s: it is not the trial any more', () => {
    const clock = { now: 0 };
    const breaker = new CircuitBreaker({ failureThreshold: 1, cooldownMs: 1_000, now: () => clock.now });
    const letThroughBefore = breaker.tryAcquire()!;
    breaker.recordFailure('call');
    clock.now = 1_000;
    const probe = probeOf(breaker.tryAcquire());
    // The call let through before the circuit opened is answered (a 404: no call served): the circuit closes.
    new CallVerdicts(breaker).answered(letThroughBefore, 404);
    assert.equal(breaker.state, 'closed');
    // The probe's connection is then reset, and its call retries: owed until the call ends, as any call's.
    const probeCall = new CallVerdicts(breaker);
    probeCall.wentOut();
    probeCall.failedRetrying(probe, {}, true);
    assert.equal(breaker.state, 'closed', 'a retried failure of a probe of a circuit since closed was counted at once');
    probeCall.answered(breaker.tryAcquire()!, 200);
    assert.equal(breaker.state, 'closed');
  });

  it('takes only a success for the upstream serving: failures meanwhile count after a 4xx or a 429, which something in front of it may answer', () => {
    for (const status of [404, 429, 500]) {
      const { breaker, clock } = make();
      const calls = [new CallVerdicts(breaker), new CallVerdicts(breaker)];
      for (const call of calls) call.wentOut();
      clock.now = 5;
      new CallVerdicts(breaker).answered(breaker.tryAcquire()!, status);
      clock.now = 10;
      for (const call of calls) call.failed(breaker.tryAcquire()!, {});
      assert.equal(breaker.state, 'open', String(status));
    }
  });

  it('counts the half-open circuit’s trial failing at once, retried or not: it is the verdict the circuit waits for', () => {
    const { breaker, clock } = make();
    breaker.recordFailure('call');
    breaker.recordFailure('call');
    clock.now = 1_000;
    const probe = probeOf(breaker.tryAcquire());
    new CallVerdicts(breaker).failedRetrying(probe, {}, true);
    assert.equal(breaker.state, 'open');
  });
});
