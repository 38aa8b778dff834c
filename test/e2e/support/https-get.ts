// One HTTPS GET from inside a pod, printed as JSON {status, body} or {error}.
// Args: url ca-file servername (also sent as Host). Verifies the server against ca-file.

import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { sendAndPrint } from './print-reply.js';

const [url, caFile, servername] = process.argv.slice(2);
sendAndPrint(request(url!, { ca: readFileSync(caFile!), servername: servername!, headers: { host: servername! }, timeout: 8000 }));
