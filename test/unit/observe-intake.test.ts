import assert from 'node:assert/strict';
import { FlowIntake } from '../../observe/flow-intake.js';
import { emptyFilter } from '../../observe/flow-filter.js';
import { FlowStore } from '../../observe/flow-store.js';
import { bpfEventToFlow } from '../../observe/from-bpf-event.js';
import type { BpfVerdictEvent } from '../../observe/from-bpf-event.js';
import { bpfDrop } from '../support/observe-fixtures.js';

const convert = (e: BpfVerdictEvent) => bpfEventToFlow(e, { monotonicEpochMs: 0 });
const batch = (n: number, from = 0) => Array.from({ length: n }, (_, i) => bpfDrop({ sport: from + i }));

describe('observe: flow intake', () => {
  it('converts in slices across event-loop turns, in order', async () => {
    const store = new FlowStore({ capacity: 1000 });
    const intake = new FlowIntake({ store, convert, slice: 10 });
    intake.push(batch(25));
    intake.push(batch(5, 25));
    assert.equal(store.stats().added, 0, 'nothing converted synchronously');
    await new Promise((r) => setImmediate(r));
    assert.equal(store.stats().added, 10, 'one slice per turn');
    await intake.idle();
    assert.equal(intake.processed, 30);
    assert.deepEqual(store.query(emptyFilter()).map((f) => f.l4!.TCP!.source_port), Array.from({ length: 30 }, (_, i) => i));
  });

  it('keeps what fits, counts the rest as lost, and reports it', async () => {
    const store = new FlowStore({ capacity: 1000 });
    const lostReports: number[] = [];
    const intake = new FlowIntake({ store, convert, maxQueued: 100, onLost: (n) => lostReports.push(n) });
    intake.push(batch(60));
    intake.push(batch(60, 60));
    assert.equal(intake.pending, 100);
    assert.equal(intake.lost, 20);
    assert.deepEqual(lostReports, [20]);
    await intake.idle();
    assert.equal(intake.processed, 100);
    assert.equal(store.query(emptyFilter()).at(-1)!.l4!.TCP!.source_port, 99);
  });

  it('skips an event the converter refuses, counting it', async () => {
    const store = new FlowStore({ capacity: 10 });
    const errors: string[] = [];
    const intake = new FlowIntake({ store, convert, onError: (e) => errors.push(e.message) });
    intake.push([bpfDrop(), bpfDrop({ type: 'weird' as 'drop' }), bpfDrop()]);
    await intake.idle();
    assert.equal(intake.processed, 2);
    assert.equal(intake.failed, 1);
    assert.match(errors[0]!, /bpf event type: "weird"/);
  });

  it('close() drops the queue and releases waiters', async () => {
    const store = new FlowStore({ capacity: 10 });
    const intake = new FlowIntake({ store, convert });
    intake.push(batch(5));
    const idle = intake.idle();
    intake.close();
    await idle;
    await new Promise((r) => setImmediate(r));
    assert.equal(store.stats().added, 0);
    intake.push(batch(1));
    assert.equal(intake.pending, 0);
  });
});
