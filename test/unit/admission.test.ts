import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AnswerAdmission, BodyAdmission, OperationAdmission } from '../../src/http/admission.ts';

describe('the load caps at their boundaries', () => {
  it('MAX_OPERATIONS_IN_FLIGHT: admits `limit` operations, not one more, and a place given back twice counts once', () => {
    const admission = new OperationAdmission(2);
    const first = admission.enter();
    assert.ok(first && admission.enter(), 'two operations admitted');
    assert.equal(admission.enter(), undefined);
    first();
    first();
    assert.ok(admission.enter(), 'the place given back admits one');
    assert.equal(admission.enter(), undefined);
  });

  it('MAX_BODY_BYTES_IN_FLIGHT: admits bodies that take the cap exactly, not a byte more', () => {
    const admission = new BodyAdmission(100);
    const leave = admission.enter(60);
    assert.equal(admission.enter(41), undefined);
    assert.ok(admission.enter(40), '40 bytes beside 60 fit the cap of 100');
    assert.equal(admission.enter(1), undefined);
    leave!();
    leave!();
    assert.equal(admission.enter(61), undefined);
    assert.ok(admission.enter(60), '60 bytes fit once the first body left');
  });

  it('MAX_ANSWER_BYTES_IN_FLIGHT: full while the answers held take the cap or more (docs/configuration.md), not just short of it', () => {
    const admission = new AnswerAdmission(100);
    const first = admission.hold(99);
    assert.equal(admission.full, false);
    const last = admission.hold(1);
    assert.equal(admission.full, true);
    last();
    last();
    assert.equal(admission.full, false);
    first();
    admission.hold(150);
    assert.equal(admission.full, true, 'one answer larger than the cap: it is sent, and fills it');
  });
});
