// Audit records as JSON lines.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KafkaAuditLog, type KafkaAuditRecord } from '../../l7/kafka/audit.js';

describe('unit: kafka audit log', () => {
  it('writes one JSON object per line and notifies listeners', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'l7mesh-test-kafka-audit-'));
    try {
      const log = new KafkaAuditLog(join(dir, 'audit.jsonl'));
      const seen: KafkaAuditRecord[] = [];
      const off = log.onRecord((r) => seen.push(r));
      const rec = (corr: number, verdict: 'allow' | 'deny'): KafkaAuditRecord => ({
        time: '2026-01-01T00:00:00.000Z', identity: 256, policy: 'p', clientId: 'c', apiKey: 'Produce', apiKeyNum: 0,
        apiVersion: 9, correlationId: corr, topics: ['orders'], verdict, rule: verdict === 'allow' ? 0 : null,
      });
      log.write(rec(1, 'allow'));
      off();
      log.write(rec(2, 'deny'));
      await log.close();
      const lines = readFileSync(join(dir, 'audit.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
      assert.deepEqual(lines.map((l) => [l.correlationId, l.verdict, l.rule]), [[1, 'allow', 0], [2, 'deny', null]]);
      assert.equal(seen.length, 1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('writes the records of several event-loop turns in order, and what is pending at close', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'l7mesh-test-kafka-audit-'));
    try {
      const path = join(dir, 'audit.jsonl');
      const log = new KafkaAuditLog(path);
      const rec = (corr: number): KafkaAuditRecord => ({
        time: '2026-01-01T00:00:00.000Z', identity: null, policy: 'p', clientId: null, apiKey: 'Fetch', apiKeyNum: 1,
        apiVersion: 12, correlationId: corr, topics: [], verdict: 'deny', rule: null, errorCode: 29,
      });
      for (let turn = 0; turn < 3; turn++) {
        for (let i = 0; i < 4; i++) log.write(rec(turn * 4 + i));
        await new Promise((r) => setImmediate(r));
      }
      log.write(rec(12));
      await log.close();
      const lines = readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
      assert.deepEqual(lines.map((l) => l.correlationId), Array.from({ length: 13 }, (_, i) => i));
      assert.ok(lines.every((l) => l.errorCode === 29));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('keeps order and every byte when the lines overflow a batch, with multi-byte topic names and one huge line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'l7mesh-test-kafka-audit-'));
    try {
      const path = join(dir, 'audit.jsonl');
      const log = new KafkaAuditLog(path);
      const rec = (corr: number, topic: string): KafkaAuditRecord => ({
        time: '2026-01-01T00:00:00.000Z', identity: 1, policy: 'p', clientId: 'c', apiKey: 'Produce', apiKeyNum: 0,
        apiVersion: 9, correlationId: corr, topics: [topic], verdict: 'allow', rule: 0,
      });
      const huge = 'ü'.repeat(70_000);
      for (let i = 0; i < 1500; i++) log.write(rec(i, i === 700 ? huge : `bestellungen-ü-${i}`));
      await log.close();
      const lines = readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as KafkaAuditRecord);
      assert.equal(lines.length, 1500);
      assert.deepEqual(lines.map((l) => l.correlationId), Array.from({ length: 1500 }, (_, i) => i));
      assert.equal(lines[700]!.topics[0], huge);
      assert.equal(lines[1499]!.topics[0], 'bestellungen-ü-1499');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
