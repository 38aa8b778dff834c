// One plain HTTP GET from inside a pod, printed as JSON {status, body} or {error}. Args: url

import { request } from 'node:http';
import { sendAndPrint } from './print-reply.js';

sendAndPrint(request(process.argv[2]!, { timeout: 8000 }));
