// Kafka codec: primitives, exact round trips of frames captured from a real broker and
// real clients, and well-formed error responses for every supported API and version.
import assert from 'node:assert/strict';
import { ApiKey } from '../../l7/kafka/api-keys.js';
import { ErrorCode } from '../../l7/kafka/error-codes.js';
import { buildErrorResponse, denialErrorCode, denyKindFor, type DenyKind } from '../../l7/kafka/error-response.js';
import { FrameSplitter } from '../../l7/kafka/frame.js';
import { encodeRequestHeader, frame, responseHeaderVersion } from '../../l7/kafka/header.js';
import { REQUESTS, RESPONSES } from '../../l7/kafka/messages.js';
import { parseRequest } from '../../l7/kafka/request.js';
import { decodeBody, encodeBody, isFlexible, supports, type MessageSpec } from '../../l7/kafka/schema.js';
import { KafkaDecodeError, Reader, Writer } from '../../l7/kafka/wire.js';
import { loadCapturedFrames, sampleBody } from './kafka-fixtures.js';

/** Every errorCode-like field anywhere in a decoded body. */
function errorCodes(v: unknown, out: number[] = []): number[] {
  if (Array.isArray(v)) v.forEach((x) => errorCodes(x, out));
  else if (v && typeof v === 'object' && !Buffer.isBuffer(v)) {
    for (const [k, x] of Object.entries(v)) {
      if (/errorcode$/i.test(k) && typeof x === 'number') out.push(x);
      else errorCodes(x, out);
    }
  }
  return out;
}

describe('unit: kafka wire primitives', () => {
  it('round-trips unsigned varints at their byte boundaries', () => {
    for (const n of [0, 1, 127, 128, 16383, 16384, 2 ** 21 - 1, 2 ** 21, 2 ** 28, 0xffffffff]) {
      const b = new Writer().uvarint(n).toBuffer();
      assert.equal(new Reader(b).uvarint(), n, `value ${n}`);
    }
    assert.deepEqual(new Writer().uvarint(300).toBuffer(), Buffer.from([0xac, 0x02]));
  });

  it('encodes compact strings and arrays with length+1, 0 meaning null', () => {
    assert.deepEqual(new Writer().compactString(null).toBuffer(), Buffer.from([0]));
    assert.deepEqual(new Writer().compactString('').toBuffer(), Buffer.from([1]));
    assert.deepEqual(new Writer().compactString('ab').toBuffer(), Buffer.from([3, 0x61, 0x62]));
    assert.equal(new Reader(Buffer.from([0])).compactString(true), null);
    assert.throws(() => new Reader(Buffer.from([0])).compactString(false), /null in a non-nullable/);
    assert.equal(new Reader(Buffer.from([0])).arrayLength(true, true), -1);
  });

  it('rejects truncated and oversized input with the field name', () => {
    assert.throws(() => new Reader(Buffer.from([0x80, 0x80])).uvarint('x.len'), (e: Error) => e instanceof KafkaDecodeError && /x\.len/.test(e.message));
    assert.throws(() => new Reader(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0x01])).uvarint(), /longer than 5 bytes/);
    assert.throws(() => new Reader(Buffer.from([0, 5, 0x61])).string(false, 'clientId'), /clientId: need 5 bytes/);
    assert.throws(() => new Reader(Buffer.from([0, 0, 0, 9])).arrayLength(false, false, 'topics'), /topics: 9 elements but 0 bytes left/);
    assert.throws(() => new Reader(Buffer.from([2])).bool('flag'), /flag: boolean byte is 2/);
  });

  it('splits frames across arbitrary chunk boundaries and refuses impossible sizes', () => {
    const a = frame(Buffer.alloc(10, 1));
    const b = frame(Buffer.alloc(20, 2));
    const all = Buffer.concat([a, b]);
    for (let cut = 0; cut <= all.length; cut++) {
      const s = new FrameSplitter(8);
      const got = [...s.push(all.subarray(0, cut)), ...s.push(all.subarray(cut))];
      assert.deepEqual(got, [a, b], `cut at ${cut}`);
      assert.equal(s.buffered(), 0);
    }
    assert.throws(() => new FrameSplitter(8).push(Buffer.from([0, 0, 0, 2, 0, 0])), /frame size 2 outside/);
    assert.throws(() => new FrameSplitter(8).push(Buffer.from([0x7f, 0xff, 0xff, 0xff])), /outside/);
    assert.throws(() => new FrameSplitter(8).push(Buffer.from([0xff, 0xff, 0xff, 0xff])), /frame size -1/);
  });

  it('parses request headers v1 and v2 (client id stays an int16 string in v2)', () => {
    const h1 = parseRequest(frame(encodeRequestHeader({ apiKey: ApiKey.Metadata, apiVersion: 1, correlationId: 9, clientId: 'c1' }), Buffer.from([0xff, 0xff, 0xff, 0xff]))).header;
    assert.deepEqual([h1.apiKey, h1.apiVersion, h1.correlationId, h1.clientId, h1.headerVersion], [3, 1, 9, 'c1', 1]);
    const raw = frame(encodeRequestHeader({ apiKey: ApiKey.Metadata, apiVersion: 9, correlationId: 10, clientId: null }), Buffer.from([1, 0, 0, 0, 0]));
    const h2 = parseRequest(raw).header;
    assert.deepEqual([h2.clientId, h2.headerVersion, h2.bodyOffset], [null, 2, 4 + 2 + 2 + 4 + 2 + 1]);
    assert.equal(responseHeaderVersion(ApiKey.ApiVersions, 3), 0);
    assert.equal(responseHeaderVersion(ApiKey.Metadata, 9), 1);
  });
});

describe('unit: kafka codec against frames captured from a real broker and clients', () => {
  const captured = loadCapturedFrames();

  it('has captures for the inspected APIs, flexible versions included', () => {
    const keys = new Set(captured.map((c) => c.apiKey));
    for (const k of [0, 1, 2, 3, 8, 9, 10, 11, 13, 14, 15, 16, 18, 19, 20, 21, 22, 24, 32, 33, 37, 68]) assert.ok(keys.has(k), `no capture of api key ${k}`);
    assert.ok(captured.some((c) => c.apiKey === ApiKey.Produce && isFlexible(REQUESTS.get(0)!, c.apiVersion)), 'no flexible Produce captured');
  });

  it('decodes and re-encodes every captured request byte for byte', () => {
    let n = 0;
    for (const c of captured.filter((x) => x.dir === 'request')) {
      const req = parseRequest(c.frame);
      assert.equal(req.header.apiKey, c.apiKey);
      if (!req.body) continue;
      const spec = REQUESTS.get(c.apiKey)!;
      assert.deepEqual(encodeBody(spec, c.apiVersion, req.body), Buffer.from(c.frame.subarray(req.header.bodyOffset!)), `${spec.name} v${c.apiVersion}`);
      n++;
    }
    assert.ok(n >= 30, `only ${n} requests decoded`);
  });

  it('decodes and re-encodes every captured response byte for byte', () => {
    let n = 0;
    for (const c of captured.filter((x) => x.dir === 'response')) {
      const spec = RESPONSES.get(c.apiKey);
      if (!spec || !supports(spec, c.apiVersion)) continue;
      const off = responseHeaderVersion(c.apiKey, c.apiVersion) === 1 ? 9 : 8;
      const body = decodeBody(spec, c.apiVersion, c.frame, off);
      assert.deepEqual(encodeBody(spec, c.apiVersion, body), Buffer.from(c.frame.subarray(off)), `${spec.name} v${c.apiVersion}`);
      n++;
    }
    assert.ok(n >= 30, `only ${n} responses decoded`);
  });

  it('finds the topics of captured requests', () => {
    const produce = captured.filter((c) => c.dir === 'request' && c.apiKey === ApiKey.Produce).map((c) => parseRequest(c.frame));
    assert.ok(produce.every((r) => r.topics.length > 0 && r.topics.every((t) => t.startsWith('cap-'))));
    const del = captured.find((c) => c.dir === 'request' && c.apiKey === ApiKey.DeleteTopics)!;
    assert.deepEqual(parseRequest(del.frame).topics, ['cap-gone']);
    const cfg = captured.find((c) => c.dir === 'request' && c.apiKey === ApiKey.DescribeConfigs)!;
    assert.deepEqual(parseRequest(cfg.frame).topics, ['cap-a']);
    const join = captured.find((c) => c.dir === 'request' && c.apiKey === ApiKey.JoinGroup)!;
    assert.deepEqual(parseRequest(join.frame).groups.length, 1);
    const named = (key: number) => {
      const r = parseRequest(captured.find((c) => c.dir === 'request' && c.apiKey === key)!.frame);
      return { topics: r.topics, groups: r.groups };
    };
    assert.deepEqual(named(ApiKey.TxnOffsetCommit), { topics: ['cap-a'], groups: ['cap-tx-group'] });
    assert.deepEqual(named(ApiKey.AddOffsetsToTxn), { topics: [], groups: ['cap-tx-group'] });
    assert.deepEqual(named(ApiKey.OffsetForLeaderEpoch), { topics: ['cap-a'], groups: [] });
    assert.deepEqual(named(ApiKey.OffsetDelete), { topics: ['cap-a'], groups: ['cap-tx-group'] });
    assert.deepEqual(named(ApiKey.DeleteGroups), { topics: [], groups: ['cap-tx-group'] });
  });

  it('builds a decodable error response for every captured request it can refuse', () => {
    for (const c of captured.filter((x) => x.dir === 'request' && RESPONSES.has(x.apiKey))) {
      const req = parseRequest(c.frame);
      for (const kind of ['topic', 'group', 'cluster'] as DenyKind[]) {
        const res = buildErrorResponse(req, kind)!;
        assert.ok(res, `no error response for api ${c.apiKey} v${c.apiVersion}`);
        assert.equal(res.readInt32BE(0), res.length - 4);
        assert.equal(res.readInt32BE(4), req.header.correlationId);
        const off = responseHeaderVersion(c.apiKey, c.apiVersion) === 1 ? 9 : 8;
        const body = decodeBody(RESPONSES.get(c.apiKey)!, c.apiVersion, res, off);
        const codes = errorCodes(body).filter((x) => x !== 0);
        assert.ok(codes.length > 0 || (req.topics.length === 0 && req.groups.length === 0), `api ${c.apiKey} v${c.apiVersion} (${kind}): no error code set`);
        for (const code of codes) assert.ok([29, 30, 31, 53].includes(code), `api ${c.apiKey} v${c.apiVersion}: unexpected code ${code}`);
      }
    }
  });
});

describe('unit: kafka error responses for every supported API and version', () => {
  const cases: Array<{ spec: MessageSpec; version: number }> = [];
  for (const spec of REQUESTS.values()) {
    if (!RESPONSES.has(spec.apiKey)) continue;
    for (let v = spec.versions[0]; v <= spec.versions[1]!; v++) if (supports(RESPONSES.get(spec.apiKey)!, v)) cases.push({ spec, version: v });
  }

  it('covers every API that has a response definition', () => {
    assert.ok(cases.length >= 120, `${cases.length} api/version cases`);
  });

  it('round-trips a sample request and response body of every API and version', () => {
    let n = 0;
    for (const specs of [REQUESTS, RESPONSES]) {
      for (const spec of specs.values()) {
        for (let v = spec.versions[0]; v <= spec.versions[1]!; v++) {
          const bytes = encodeBody(spec, v, sampleBody(spec.fields, v));
          const again = encodeBody(spec, v, decodeBody(spec, v, bytes));
          assert.deepEqual(again, bytes, `${spec.name} v${v}`);
          n++;
        }
      }
    }
    assert.ok(n > 250, `${n} cases`);
  });

  it('answers a denied sample request of each API and version with the right code', () => {
    const expected = (key: number, kind: DenyKind): number[] => {
      if (key === ApiKey.InitProducerId) return [ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED];
      if (key === ApiKey.FindCoordinator) return [ErrorCode.GROUP_AUTHORIZATION_FAILED];
      if (key === ApiKey.ListGroups || key === ApiKey.DescribeCluster) return [ErrorCode.CLUSTER_AUTHORIZATION_FAILED];
      return kind === 'group' ? [ErrorCode.GROUP_AUTHORIZATION_FAILED] : [ErrorCode.TOPIC_AUTHORIZATION_FAILED];
    };
    for (const { spec, version } of cases) {
      const body = sampleBody(spec.fields, version);
      const f = frame(encodeRequestHeader({ apiKey: spec.apiKey, apiVersion: version, correlationId: 77, clientId: 'c' }), encodeBody(spec, version, body));
      const req = parseRequest(f);
      for (const kind of ['topic', 'group'] as DenyKind[]) {
        const res = buildErrorResponse(req, kind);
        assert.ok(res, `${spec.name} v${version}: no error response`);
        const off = responseHeaderVersion(spec.apiKey, version) === 1 ? 9 : 8;
        const decoded = decodeBody(RESPONSES.get(spec.apiKey)!, version, res, off);
        const codes = [...new Set(errorCodes(decoded).filter((x) => x !== 0))];
        assert.deepEqual(codes, expected(spec.apiKey, kind), `${spec.name} v${version} (${kind})`);
      }
    }
  });

  it('refuses the transactional APIs as a whole with TRANSACTIONAL_ID_AUTHORIZATION_FAILED, a refused topic of a TxnOffsetCommit with 29', () => {
    for (const key of [ApiKey.AddOffsetsToTxn, ApiKey.EndTxn, ApiKey.TxnOffsetCommit]) {
      const spec = REQUESTS.get(key)!;
      for (let version = spec.versions[0]; version <= spec.versions[1]!; version++) {
        const body = sampleBody(spec.fields, version);
        const req = parseRequest(frame(encodeRequestHeader({ apiKey: key, apiVersion: version, correlationId: 5, clientId: 'tx' }), encodeBody(spec, version, body)));
        assert.equal(denyKindFor(req), 'transaction', `${spec.name} v${version}`);
        const decode = (res: Buffer) => decodeBody(RESPONSES.get(key)!, version, res, responseHeaderVersion(key, version) === 1 ? 9 : 8);
        const whole = decode(buildErrorResponse(req, denyKindFor(req))!);
        assert.deepEqual([...new Set(errorCodes(whole).filter((x) => x !== 0))], [ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED], `${spec.name} v${version}`);
        assert.equal(denialErrorCode(req, 'transaction'), ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
        if (key === ApiKey.TxnOffsetCommit) {
          const byTopic = decode(buildErrorResponse(req, 'topic')!);
          assert.deepEqual([...new Set(errorCodes(byTopic).filter((x) => x !== 0))], [ErrorCode.TOPIC_AUTHORIZATION_FAILED]);
        }
      }
    }
  });

  it('names the groups and topics of the transactional, group-deletion and leader-epoch requests', () => {
    const parse = (key: number, version: number, body: Record<string, unknown>) =>
      parseRequest(frame(encodeRequestHeader({ apiKey: key, apiVersion: version, correlationId: 1, clientId: 'c' }), encodeBody(REQUESTS.get(key)!, version, body)));
    const txnCommit = parse(ApiKey.TxnOffsetCommit, 3, {
      transactionalId: 'tx', groupId: 'g1', producerId: 7n, producerEpoch: 0, generationId: -1, memberId: '', groupInstanceId: null,
      topics: [{ name: 'orders', partitions: [{ partitionIndex: 0, committedOffset: 5n, committedLeaderEpoch: -1, committedMetadata: null }] }],
    });
    assert.deepEqual([txnCommit.topics, txnCommit.groups], [['orders'], ['g1']]);
    const addOffsets = parse(ApiKey.AddOffsetsToTxn, 3, { transactionalId: 'tx', producerId: 7n, producerEpoch: 0, groupId: 'g2' });
    assert.deepEqual([addOffsets.topics, addOffsets.groups, addOffsets.topicsKnown], [[], ['g2'], true]);
    const del = parse(ApiKey.DeleteGroups, 2, { groupsNames: ['a', 'b'] });
    assert.deepEqual(del.groups, ['a', 'b']);
    assert.equal(denyKindFor(del), 'group');
    const epoch = parse(ApiKey.OffsetForLeaderEpoch, 4, { replicaId: -1, topics: [{ topic: 'orders', partitions: [{ partition: 0, currentLeaderEpoch: 0, leaderEpoch: 0 }] }] });
    assert.deepEqual(epoch.topics, ['orders']);
    const offDel = parse(ApiKey.OffsetDelete, 0, { groupId: 'g3', topics: [{ name: 'orders', partitions: [{ partitionIndex: 0 }] }] });
    assert.deepEqual([offDel.topics, offDel.groups], [['orders'], ['g3']]);
    const offDelByTopic = decodeBody(RESPONSES.get(ApiKey.OffsetDelete)!, 0, buildErrorResponse(offDel, 'topic')!, 8);
    assert.equal(offDelByTopic.errorCode, 0, 'a refused topic leaves the group-level error unset');
  });
});
