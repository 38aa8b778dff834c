// Worker-thread entry of the Kafka processor (see processor-thread.ts): the gRPC endpoint,
// the sessions and the JSON-lines audit file live here, on an event loop of their own.
// The parent sends rule sets and is answered with an ack per change; audit records go
// back in batches when the parent wants them (flows).
import { parentPort, workerData } from 'node:worker_threads';
import { KafkaAuditLog, AUDIT_FLUSH_MS, type KafkaAuditRecord } from './audit.js';
import { KafkaExtProcServer } from './ext-proc-server.js';
import type { ParentMessage, WorkerData, WorkerMessage } from './processor-messages.js';

const port = parentPort;
if (!port) throw new Error('processor-worker.js runs as a worker thread only');
const data = workerData as WorkerData;
const send = (m: WorkerMessage) => port.postMessage(m);

const audit = new KafkaAuditLog(data.auditPath);
const server = new KafkaExtProcServer(audit);

// One message per batch: a structured clone per record would cost more than the record.
let batch: KafkaAuditRecord[] = [];
let batchTimer: NodeJS.Timeout | undefined;
const flushRecords = () => {
  clearTimeout(batchTimer);
  batchTimer = undefined;
  if (batch.length === 0) return;
  const records = batch;
  batch = [];
  send({ type: 'records', records });
};
if (data.forwardRecords) {
  audit.onRecord((rec) => {
    batch.push(rec);
    batchTimer ??= setTimeout(flushRecords, AUDIT_FLUSH_MS);
  });
}

port.on('message', (m: ParentMessage) => {
  if (m.type === 'policies') {
    for (const [name, rules] of m.set) server.setPolicy(name, rules);
    for (const name of m.deleted) server.deletePolicy(name);
    send({ type: 'ack', seq: m.seq });
  } else if (m.type === 'flush') {
    flushRecords();
    send({ type: 'flushed', seq: m.seq });
  } else if (m.type === 'close') {
    void Promise.all([server.close(), audit.close()]).then(() => {
      flushRecords();
      send({ type: 'closed' });
      port.close();
    });
  }
});

try {
  if (data.listen.unix !== undefined) {
    await server.listenUnix(data.listen.unix);
    send({ type: 'listening' });
  } else {
    send({ type: 'listening', port: await server.listen(data.listen.host, data.listen.port) });
  }
} catch (err) {
  send({ type: 'failed', error: (err as Error).message });
}
