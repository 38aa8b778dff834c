// The processor's HTTP/2 tuning (window, no Nagle) relies on grpc-js internals; this
// notices when a grpc-js upgrade makes it silently stop applying.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { KafkaExtProcServer, PROCESSOR_WINDOW_BYTES } from '../../l7/kafka/ext-proc-server.js';

describe('unit: kafka ext_proc server', () => {
  it('advertises the large HTTP/2 window to Envoy', async () => {
    const server = new KafkaExtProcServer();
    const port = await server.listen();
    const client = http2.connect(`http://127.0.0.1:${port}`);
    try {
      assert.equal(server.flowControlTuned, true);
      const settings = await new Promise<http2.Settings>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('no SETTINGS from the processor within 5 s')), 5000);
        client.once('remoteSettings', (s) => {
          clearTimeout(t);
          resolve(s);
        });
        client.once('error', reject);
      });
      assert.equal(settings.initialWindowSize, PROCESSOR_WINDOW_BYTES);
    } finally {
      client.close();
      await server.close();
    }
  });
});
