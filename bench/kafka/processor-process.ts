// Runs the l7mesh Kafka processor alone in its own process, so that a benchmark's load
// generator does not share its event loop. Prints {"port":N} once listening.
//   node dist/bench/kafka/processor-process.js <policy-name> '<rules JSON>' [audit.jsonl]
import { KafkaAuditLog } from '../../l7/kafka/audit.js';
import { KafkaExtProcServer } from '../../l7/kafka/ext-proc-server.js';
import type { KafkaRule } from '../../l7/kafka/rule.js';

const [policy, rulesJson, auditPath] = process.argv.slice(2);
if (!policy || !rulesJson) {
  console.error('usage: processor-process.js <policy-name> <rules JSON> [audit.jsonl]');
  process.exit(2);
}
const server = new KafkaExtProcServer(new KafkaAuditLog(auditPath));
server.setPolicy(policy, JSON.parse(rulesJson) as KafkaRule[]);
const port = await server.listen();
console.log(JSON.stringify({ port }));
const stop = async () => {
  await server.close();
  await server.audit.close();
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
