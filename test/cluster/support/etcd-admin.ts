// Runs inside the fabric namespace (where the test etcd listens): one admin operation.
// node etcd-admin.js <endpoint> <prefix> delete|get <key>
import { EtcdKv } from '../../../cluster/etcd-kv.js';

const [endpoint, prefix, op, key] = process.argv.slice(2);
const kv = new EtcdKv({ endpoints: [endpoint!], prefix: prefix! });
try {
  if (op === 'delete') await kv.delete(key!);
  else if (op === 'get') process.stdout.write(`${JSON.stringify((await kv.get(key!)) ?? null)}\n`);
  else if (op === 'list') process.stdout.write(`${JSON.stringify((await kv.list(key ?? '')).entries.map((e) => e.key))}\n`);
  else throw new Error(`op: "${op}" is not one of delete, get, list`);
} finally {
  await kv.close();
}
