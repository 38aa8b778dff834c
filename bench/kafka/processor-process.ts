// Stands in for the agent's Kafka side in its own process, so that a benchmark's load
// generator does not share its event loop: the processor on a worker thread
// (KafkaProcessorThread, as the agent runs it), audit records sent back to the main
// thread and turned into flows there, as the agent does. Prints {"port":N} once
// listening, or {"unix": path} when a Unix socket path is given.
//   node dist/bench/kafka/processor-process.js <policy-name> '<rules JSON>' [audit.jsonl] [unix socket]
import { KafkaProcessorThread } from '../../l7/kafka/processor-thread.js';
import type { KafkaRule } from '../../l7/kafka/rule.js';
import { kafkaAuditToFlow } from '../../observe/from-kafka-audit.js';

const [policy, rulesJson, auditPath, unixPath] = process.argv.slice(2);
if (!policy || !rulesJson) {
  console.error('usage: processor-process.js <policy-name> <rules JSON> [audit.jsonl] [unix socket]');
  process.exit(2);
}
let flows = 0;
const processor = new KafkaProcessorThread({
  ...(auditPath ? { auditPath } : {}),
  onRecords: (records) => {
    for (const r of records) if (kafkaAuditToFlow(r).verdict) flows++;
  },
  onError: (m) => console.error(m),
});
processor.setPolicies(new Map([[policy, JSON.parse(rulesJson) as KafkaRule[]]]));
if (unixPath) {
  await processor.listenUnix(unixPath);
  await processor.applied();
  console.log(JSON.stringify({ unix: unixPath }));
} else {
  const port = await processor.listen();
  await processor.applied();
  console.log(JSON.stringify({ port }));
}
const stop = async () => {
  await processor.close();
  console.error(`processor: ${flows} flows`);
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
