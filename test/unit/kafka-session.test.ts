// The per-connection enforcement state machine, fed with frames captured from a real
// client and broker: substitution of denied requests, response order, acks=0, fail
// closed; and a bounded fuzz run (random, truncated and bit-flipped frames).
import assert from 'node:assert/strict';
import { ApiKey } from '../../l7/kafka/api-keys.js';
import { KafkaAuditLog, type KafkaAuditRecord } from '../../l7/kafka/audit.js';
import { KafkaPolicyEngine } from '../../l7/kafka/engine.js';
import { ErrorCode } from '../../l7/kafka/error-codes.js';
import { encodeRequestHeader, encodeResponseHeader, frame, parseRequestHeader } from '../../l7/kafka/header.js';
import { ProduceRequest, ProduceResponse, REQUESTS } from '../../l7/kafka/messages.js';
import { decodeBody, encodeBody, type Value } from '../../l7/kafka/schema.js';
import { KafkaSession } from '../../l7/kafka/session.js';
import type { KafkaRule } from '../../l7/kafka/rule.js';
import { loadCapturedFrames } from './kafka-fixtures.js';

function session(rules: KafkaRule[]): { s: KafkaSession; audit: KafkaAuditRecord[] } {
  const audit: KafkaAuditRecord[] = [];
  const log = new KafkaAuditLog();
  log.onRecord((r) => audit.push(r));
  return { s: new KafkaSession({ engine: new KafkaPolicyEngine(rules), audit: log, identity: 300, policy: 'p' }), audit };
}

function produce(corr: number, topic: string, acks = -1, version = 9): Buffer {
  return frame(
    encodeRequestHeader({ apiKey: ApiKey.Produce, apiVersion: version, correlationId: corr, clientId: 'app' }),
    encodeBody(ProduceRequest, version, { transactionalId: null, acks, timeoutMs: 1000, topicData: [{ name: topic, partitionData: [{ index: 0, records: Buffer.from('x') }] }] }),
  );
}

/** A broker's answer to any request: just a correlation id and some body bytes. */
function brokerResponse(corr: number): Buffer {
  return frame(encodeResponseHeader(corr, 0), Buffer.from([0, 0, 0, 0]));
}

function split(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let off = 0; off < buf.length; ) {
    const size = buf.readInt32BE(off);
    out.push(buf.subarray(off, off + 4 + size));
    off += 4 + size;
  }
  return out;
}

describe('unit: kafka session (per-connection enforcement)', () => {
  it('forwards allowed requests unchanged and replaces a denied one by ApiVersions v0 with its correlation id', () => {
    const { s, audit } = session([{ role: 'produce', topic: 'orders' }]);
    const a = produce(1, 'orders');
    const d = produce(2, 'secret');
    const c = produce(3, 'orders');
    const out = s.onRequestData(Buffer.concat([a, d, c]));
    assert.equal(out.close, undefined);
    const frames = split(out.data);
    assert.deepEqual(frames[0], a);
    assert.deepEqual(frames[2], c);
    const sub = parseRequestHeader(frames[1]!);
    assert.deepEqual([sub.apiKey, sub.apiVersion, sub.correlationId, sub.clientId], [ApiKey.ApiVersions, 0, 2, 'app']);
    assert.deepEqual(audit.map((r) => [r.correlationId, r.verdict, r.rule, r.identity, r.apiKey, r.errorCode]), [
      [1, 'allow', 0, 300, 'Produce', undefined],
      [2, 'deny', null, 300, 'Produce', ErrorCode.TOPIC_AUTHORIZATION_FAILED],
      [3, 'allow', 0, 300, 'Produce', undefined],
    ]);
    // The broker answers all three in order; the middle answer becomes the Produce error.
    const res = s.onResponseData(Buffer.concat([brokerResponse(1), brokerResponse(2), brokerResponse(3)]));
    const rf = split(res.data);
    assert.deepEqual(rf.map((f) => f.readInt32BE(4)), [1, 2, 3]);
    assert.deepEqual(rf[0], brokerResponse(1));
    const body = decodeBody(ProduceResponse, 9, rf[1]!, 9);
    assert.equal((((body.responses as Value[])[0]!.partitionResponses as Value[])[0]!).errorCode, ErrorCode.TOPIC_AUTHORIZATION_FAILED);
    assert.equal(s.inFlight(), 0);
  });

  it('handles frames split at every byte boundary', () => {
    const { s } = session([{}]);
    const all = Buffer.concat([produce(1, 'a'), produce(2, 'b')]);
    const out: Buffer[] = [];
    for (let i = 0; i < all.length; i++) out.push(s.onRequestData(all.subarray(i, i + 1)).data);
    assert.deepEqual(Buffer.concat(out), all);
    const res = Buffer.concat([brokerResponse(1), brokerResponse(2)]);
    const back: Buffer[] = [];
    for (let i = 0; i < res.length; i++) back.push(s.onResponseData(res.subarray(i, i + 1)).data);
    assert.deepEqual(Buffer.concat(back), res);
  });

  it('drops a denied acks=0 produce (no response is owed) and forwards an allowed one without expecting an answer', () => {
    const { s, audit } = session([{ role: 'produce', topic: 'orders' }]);
    assert.equal(s.onRequestData(produce(1, 'secret', 0)).data.length, 0);
    assert.equal(s.inFlight(), 0);
    assert.equal(s.stats.dropped, 1);
    assert.deepEqual(s.onRequestData(produce(2, 'orders', 0)).data, produce(2, 'orders', 0));
    assert.equal(s.inFlight(), 0);
    assert.deepEqual(audit.map((r) => [r.verdict, r.outcome, r.errorCode]), [['deny', 'dropped', undefined], ['allow', undefined, undefined]]);
  });

  it('audits the error code each denial put in front of the client (29 topic, 30 group, 31 cluster, 53 transactional id)', () => {
    const req = (apiKey: number, apiVersion: number, body: Value, spec = REQUESTS.get(apiKey)!) =>
      frame(encodeRequestHeader({ apiKey, apiVersion, correlationId: 7, clientId: 'app' }), encodeBody(spec, apiVersion, body));
    const cases: Array<[string, Buffer, number]> = [
      ['Produce to a refused topic', produce(7, 'secret'), ErrorCode.TOPIC_AUTHORIZATION_FAILED],
      ['JoinGroup', req(ApiKey.JoinGroup, 5, { groupId: 'g', sessionTimeoutMs: 10000, rebalanceTimeoutMs: 10000, memberId: '', groupInstanceId: null, protocolType: 'consumer', protocols: [] }), ErrorCode.GROUP_AUTHORIZATION_FAILED],
      ['ListGroups', req(ApiKey.ListGroups, 3, { statesFilter: [] }), ErrorCode.CLUSTER_AUTHORIZATION_FAILED],
      ['FindCoordinator for a transaction', req(ApiKey.FindCoordinator, 3, { key: 'tx', keyType: 1 }), ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED],
      ['idempotent InitProducerId', req(ApiKey.InitProducerId, 4, { transactionalId: null, transactionTimeoutMs: 1000, producerId: -1n, producerEpoch: -1 }), ErrorCode.CLUSTER_AUTHORIZATION_FAILED],
    ];
    for (const [name, f, code] of cases) {
      const { s, audit } = session([{ role: 'produce', topic: 'orders' }]);
      const out = s.onRequestData(f);
      assert.equal(out.close, undefined, name);
      assert.equal(audit.length, 1, name);
      assert.deepEqual([audit[0]!.verdict, audit[0]!.errorCode, audit[0]!.outcome], ['deny', code, undefined], name);
      // The code in the record is the one in the response the client gets.
      const res = s.onResponseData(brokerResponse(7)).data;
      assert.ok(res.includes(Buffer.from([code >> 8, code & 0xff])), `${name}: error response carries ${code}`);
    }
  });

  it('streams an allowed response through once its header is checked, and holds a replaced one until complete', () => {
    const { s } = session([{ role: 'produce', topic: 'orders' }]);
    s.onRequestData(Buffer.concat([produce(1, 'orders'), produce(2, 'secret'), produce(3, 'orders')]));
    // A 64 KiB answer to request 1: its first 100 bytes go out at once, not after the rest.
    const big = frame(encodeResponseHeader(1, 0), Buffer.alloc(64 * 1024, 0x5a));
    const first = s.onResponseData(big.subarray(0, 100));
    assert.equal(first.close, undefined);
    assert.deepEqual(first.data, big.subarray(0, 100));
    assert.equal(s.inFlight(), 2);
    // The tail of request 1's answer and the start of the broker's answer to the
    // substitute of request 2 arrive together: the tail passes, the substitute answer is held.
    const sub = brokerResponse(2);
    const mid = s.onResponseData(Buffer.concat([big.subarray(100), sub.subarray(0, 6)]));
    assert.deepEqual(mid.data, big.subarray(100));
    const rest = s.onResponseData(Buffer.concat([sub.subarray(6), brokerResponse(3)]));
    const rf = split(rest.data);
    assert.deepEqual(rf.map((f) => f.readInt32BE(4)), [2, 3]);
    const body = decodeBody(ProduceResponse, 9, rf[0]!, 9);
    assert.equal((((body.responses as Value[])[0]!.partitionResponses as Value[])[0]!).errorCode, ErrorCode.TOPIC_AUTHORIZATION_FAILED);
    assert.deepEqual(rf[1], brokerResponse(3));
    assert.equal(s.inFlight(), 0);
  });

  it('lets no byte of a response out before its header matched, and refuses impossible response sizes', () => {
    const a = session([{}]).s;
    a.onRequestData(produce(1, 'x'));
    const wrong = frame(encodeResponseHeader(9, 0), Buffer.alloc(1000));
    assert.equal(a.onResponseData(wrong.subarray(0, 7)).data.length, 0);
    const r = a.onResponseData(wrong.subarray(7));
    assert.match(r.close ?? '', /correlation id 9 does not match pending request 1/);
    assert.equal(r.data.length, 0);
    for (const size of [3, -1, 200 * 1024 * 1024]) {
      const b = session([{}]).s;
      b.onRequestData(produce(1, 'x'));
      const head = Buffer.alloc(8);
      head.writeInt32BE(size, 0);
      head.writeInt32BE(1, 4);
      const res = b.onResponseData(head);
      assert.match(res.close ?? '', /frame size .* outside/, `size ${size}`);
      assert.equal(res.data.length, 0);
    }
  });

  it('closes with a clear reason when either side ends the connection in the middle of a frame', () => {
    const a = session([{}]).s;
    const p = produce(1, 'x');
    assert.equal(a.onRequestData(p.subarray(0, 20)).data.length, 0);
    const r = a.onRequestData(Buffer.alloc(0), true);
    assert.match(r.close ?? '', /truncated request: the client ended the connection 20 bytes into a frame/);
    assert.equal(r.data.length, 0);
    // A complete frame followed by the half-close is fine.
    const b = session([{}]).s;
    const whole = b.onRequestData(p, true);
    assert.equal(whole.close, undefined);
    assert.deepEqual(whole.data, p);
    const big = frame(encodeResponseHeader(1, 0), Buffer.alloc(500));
    const res = b.onResponseData(big.subarray(0, 100), true);
    assert.match(res.close ?? '', /truncated response: the broker ended the connection 408 bytes short of a frame/);
    const c = session([{}]).s;
    c.onRequestData(p);
    assert.match(c.onResponseData(big.subarray(0, 5), true).close ?? '', /truncated response: .* 5 bytes into a frame/);
  });

  it('closes on a response that matches no pending request, or one out of order', () => {
    const a = session([{}]).s;
    assert.match(a.onResponseData(brokerResponse(5)).close ?? '', /no request pending/);
    const b = session([{}]).s;
    b.onRequestData(Buffer.concat([produce(1, 'x'), produce(2, 'x')]));
    assert.match(b.onResponseData(brokerResponse(2)).close ?? '', /does not match pending request 1/);
    // Once closed, nothing more passes.
    assert.equal(b.onRequestData(produce(3, 'x')).data.length, 0);
  });

  it('closes when a request it cannot refuse is denied, and on unsupported versions', () => {
    const { s, audit } = session([{ apiKey: 'metadata' }]);
    const describeAcls = frame(encodeRequestHeader({ apiKey: ApiKey.DescribeAcls, apiVersion: 3, correlationId: 1, clientId: 'x' }), Buffer.alloc(8));
    assert.match(s.onRequestData(describeAcls).close ?? '', /DescribeAcls v3 denied and no error response exists/);
    const rec = audit.at(-1)!;
    assert.deepEqual([rec.apiKey, rec.verdict, rec.outcome, rec.errorCode], ['DescribeAcls', 'deny', 'closed', undefined]);
    assert.match(rec.reason ?? '', /connection closed/);
    const t = session([{}]).s;
    const fetch13 = frame(encodeRequestHeader({ apiKey: ApiKey.Fetch, apiVersion: 13, correlationId: 1, clientId: 'x' }), Buffer.alloc(40));
    assert.match(t.onRequestData(fetch13).close ?? '', /FetchRequest v13 is not supported/);
  });

  it('replays a captured client conversation and caps the broker ApiVersions answer', () => {
    const captured = loadCapturedFrames();
    const req = captured.find((c) => c.dir === 'request' && c.apiKey === ApiKey.ApiVersions && c.apiVersion >= 3)!;
    const res = captured.find((c) => c.dir === 'response' && c.apiKey === ApiKey.ApiVersions && c.apiVersion === req.apiVersion)!;
    const { s } = session([{}]);
    // The captured response carries the captured request's correlation id only if both
    // come from the same exchange; align them explicitly.
    const corr = parseRequestHeader(req.frame).correlationId;
    const answer = Buffer.from(res.frame);
    answer.writeInt32BE(corr, 4);
    assert.deepEqual(s.onRequestData(req.frame).data, req.frame);
    const out = s.onResponseData(answer);
    assert.equal(out.close, undefined);
    assert.equal(out.data.length, answer.length);
    assert.notDeepEqual(out.data, answer, 'a Kafka 4.1 broker offers Fetch > 12, which must be capped');
  });
});

describe('unit: kafka ApiVersions capping', () => {
  it('caps an UNSUPPORTED_VERSION answer, which brokers send in v0 format', () => {
    const { s } = session([{}]);
    s.onRequestData(frame(encodeRequestHeader({ apiKey: ApiKey.ApiVersions, apiVersion: 9, correlationId: 4, clientId: 'future' }), Buffer.from([1, 1, 0])));
    // v0 body: error 35, [ {Fetch 4..17}, {ApiVersions 0..4} ]
    const body = Buffer.from([0, 35, 0, 0, 0, 2, 0, 1, 0, 4, 0, 17, 0, 18, 0, 0, 0, 4]);
    const out = s.onResponseData(frame(encodeResponseHeader(4, 0), body));
    assert.equal(out.close, undefined);
    assert.equal(out.data.readInt16BE(4 + 4 + 2 + 4 + 4), 12);
    assert.equal(out.data.readInt16BE(4 + 4 + 2 + 4 + 6 + 4), 4);
  });
});

describe('unit: kafka session fuzz (bounded)', () => {
  // Deterministic PRNG so a failure reproduces.
  let seed = 0x1234567;
  const rnd = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 0x100000000;
  };
  const captured = loadCapturedFrames().filter((c) => c.dir === 'request');
  const ITERATIONS = 3000;

  it(`never throws on ${ITERATIONS} random, truncated or mutated request streams`, () => {
    let closed = 0;
    for (let i = 0; i < ITERATIONS; i++) {
      const { s } = session([{ role: 'produce', topic: 'cap-a' }, { apiKey: 'metadata' }]);
      const base = captured[Math.floor(rnd() * captured.length)]!.frame;
      let input: Buffer;
      const mode = i % 3;
      if (mode === 0) {
        input = Buffer.from(Array.from({ length: 4 + Math.floor(rnd() * 64) }, () => Math.floor(rnd() * 256)));
      } else if (mode === 1) {
        input = Buffer.from(base);
        const flips = 1 + Math.floor(rnd() * 4);
        for (let k = 0; k < flips; k++) input[4 + Math.floor(rnd() * (input.length - 4))]! ^= 1 << Math.floor(rnd() * 8);
      } else {
        input = Buffer.from(base.subarray(0, 4 + Math.floor(rnd() * (base.length - 4))));
        input.writeInt32BE(input.length - 4, 0);
      }
      const out = s.onRequestData(input);
      if (out.close) closed++;
      // Whatever passes is whole frames only.
      let off = 0;
      while (off < out.data.length) off += 4 + out.data.readInt32BE(off);
      assert.equal(off, out.data.length);
    }
    assert.ok(closed > ITERATIONS / 2, `only ${closed} of ${ITERATIONS} bad inputs closed the connection`);
  });

  it('never throws on random broker bytes and closes on every bad response', () => {
    for (let i = 0; i < 1000; i++) {
      const { s } = session([{}]);
      s.onRequestData(produce(1, 'a'));
      const junk = Buffer.from(Array.from({ length: 1 + Math.floor(rnd() * 40) }, () => Math.floor(rnd() * 256)));
      const out = s.onResponseData(junk);
      if (!out.close) {
        // Only an incomplete frame may stay pending without a verdict.
        assert.equal(out.data.length, 0);
      }
    }
  });

  it('closes the connection for every truncation of every captured request body', () => {
    let n = 0;
    for (const c of captured) {
      const { s } = session([{}]);
      if (!s.onRequestData(c.frame).data.length) continue;
      const bodyStart = parseRequestHeader(c.frame).bodyOffset;
      if (bodyStart === undefined) continue;
      for (let cut = bodyStart; cut < c.frame.length; cut++) {
        const t = Buffer.from(c.frame.subarray(0, cut));
        t.writeInt32BE(t.length - 4, 0);
        const res = session([{}]).s.onRequestData(t);
        assert.ok(res.close, `${c.apiKey} v${c.apiVersion} truncated to ${cut} bytes was not refused`);
        assert.equal(res.data.length, 0);
        n++;
      }
    }
    assert.ok(n > 1000, `${n} truncations`);
  });
});
