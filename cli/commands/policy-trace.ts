// `l7mesh policy trace`: offline, on policy files. Exit 0 allowed (or audit), 1 denied,
// 2 bad input (flags or policy files; every policy error is printed, none applied).

import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { PolicyImportError } from '../../policy/errors.js';
import { parsePolicySources, type PolicySource } from '../../policy/import.js';
import type { ParsedPolicy } from '../../policy/rule.js';
import { TraceInputError, formatTraceText, tracePolicies, type TraceRequest } from '../../policy/trace.js';
import { kafkaApiKeyFromCli } from '../../policy/kafka-api.js';
import type { HttpRequest, KafkaRequest } from '../../policy/l7-eval.js';
import { EXIT_DENIED, EXIT_OK, EXIT_USAGE, processIo, type CliIo, type Command } from '../registry.js';

export const POLICY_TRACE_HELP = `Usage: l7mesh policy trace -f POLICY.yaml [-f ...] --src LABELS --dst LABELS --dport PORT[/PROTO] [flags]

Would a connection (and request) from --src to --dst pass? The verdict combines the
source's egress policy and the destination's ingress policy, as a real connection meets
both. Works offline on policy files (CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy,
networking.k8s.io/v1 NetworkPolicy; multi-document YAML or JSON).

Peers (--src, --dst):
  k8s:app=a,k8s:io.kubernetes.pod.namespace=ns   a workload's identity labels (source
                     defaults to k8s:); without a namespace label it is in --policy-namespace;
                     namespace labels are k8s:io.cilium.k8s.namespace.labels.<key>=<value>;
                     missing implicit labels are added as Cilium would: the namespace's
                     kubernetes.io/metadata.name, service account "default", cluster "default"
  reserved:host | reserved:world | reserved:remote-node | ...   a reserved identity
  cidr:10.1.2.3/32   an address; outside every CIDR named by the policies it is the world

Flags:
  -f, --file FILE            policy file (repeatable)
      --src LABELS           source peer
      --dst LABELS           destination peer
      --dport PORT[/PROTO]   destination port and protocol (TCP, UDP, SCTP; default TCP)
      --policy-namespace NS  namespace of namespaced policies and peers without one (default "default")
      --http-method M        HTTP request method (default GET when another --http-* flag is given)
      --http-path P          HTTP :path, query included (default /); gRPC: /package.Service/Method with POST
      --http-host H          HTTP :authority
      --http-header 'K: V'   request header (repeatable)
      --kafka-api-key K      Kafka API key: produce, fetch, metadata, ... or its number
      --kafka-api-version N  Kafka API version
      --kafka-topic T        topic carried by the request (repeatable)
      --kafka-client-id C    Kafka client id
      --audit-mode           policy audit mode: a denied verdict becomes "audit" (exit 0)
      --allow-localhost M    always (default: the host may reach local workloads) or policy
  -o, --output FORMAT        text (default) or json
  -h, --help                 this help

Exit code: 0 allowed or audit, 1 denied, 2 bad input.
`;

interface Flags {
  files: string[];
  src?: string;
  dst?: string;
  dport?: string;
  policyNamespace?: string;
  httpMethod?: string;
  httpPath?: string;
  httpHost?: string;
  httpHeaders: string[];
  kafkaApiKey?: string;
  kafkaApiVersion?: string;
  kafkaTopics: string[];
  kafkaClientId?: string;
  output: string;
  auditMode: boolean;
  allowLocalhost?: string;
  help: boolean;
}

class UsageError extends Error {}

const VALUE_FLAGS: Record<string, keyof Flags> = {
  '-f': 'files',
  '--file': 'files',
  '--src': 'src',
  '--dst': 'dst',
  '--dport': 'dport',
  '--policy-namespace': 'policyNamespace',
  '--http-method': 'httpMethod',
  '--http-path': 'httpPath',
  '--http-host': 'httpHost',
  '--http-header': 'httpHeaders',
  '--kafka-api-key': 'kafkaApiKey',
  '--kafka-api-version': 'kafkaApiVersion',
  '--kafka-topic': 'kafkaTopics',
  '--kafka-client-id': 'kafkaClientId',
  '-o': 'output',
  '--output': 'output',
  '--allow-localhost': 'allowLocalhost',
};

function parseFlags(argv: readonly string[]): Flags {
  const f: Flags = { files: [], httpHeaders: [], kafkaTopics: [], output: 'text', auditMode: false, help: false };
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i]!;
    let value: string | undefined;
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    if (eq !== -1) {
      value = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    if (arg === '-h' || arg === '--help') {
      f.help = true;
      continue;
    }
    if (arg === '--audit-mode') {
      f.auditMode = true;
      continue;
    }
    const key = VALUE_FLAGS[arg];
    if (!key) throw new UsageError(arg.startsWith('-') ? `unknown flag ${arg}` : `unexpected argument "${arg}"`);
    if (value === undefined) {
      if (i + 1 >= argv.length) throw new UsageError(`flag ${arg} needs a value`);
      value = argv[++i]!;
    }
    const cur = f[key];
    if (Array.isArray(cur)) cur.push(value);
    else {
      if (cur !== undefined && key !== 'output') throw new UsageError(`flag ${arg} given twice`);
      (f as unknown as Record<string, unknown>)[key] = value;
    }
  }
  return f;
}

function buildRequest(f: Flags): TraceRequest {
  if (!f.src) throw new UsageError('--src is required');
  if (!f.dst) throw new UsageError('--dst is required');
  if (!f.dport) throw new UsageError('--dport is required (e.g. --dport 80/TCP)');
  const m = /^(\d{1,5})(?:\/([A-Za-z]+))?$/.exec(f.dport.trim());
  if (!m) throw new UsageError(`--dport: "${f.dport}" is not PORT or PORT/PROTOCOL (e.g. 80/TCP)`);
  const port = Number(m[1]);
  if (port < 1 || port > 65535) throw new UsageError(`--dport: port ${port} is out of range (1-65535)`);
  const proto = (m[2] ?? 'TCP').toUpperCase();
  if (proto !== 'TCP' && proto !== 'UDP' && proto !== 'SCTP') throw new UsageError(`--dport: protocol "${m[2]}" is not TCP, UDP or SCTP`);
  if (f.output !== 'text' && f.output !== 'json') throw new UsageError(`--output: "${f.output}" is not text or json`);
  if (f.policyNamespace !== undefined && (f.policyNamespace.length > 63 || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(f.policyNamespace))) {
    throw new UsageError(`--policy-namespace: "${f.policyNamespace}" is not a namespace name (DNS-1123 label: lower-case letters, digits and -, at most 63)`);
  }
  if (f.allowLocalhost !== undefined && f.allowLocalhost !== 'always' && f.allowLocalhost !== 'policy') throw new UsageError(`--allow-localhost: "${f.allowLocalhost}" is not always or policy`);

  const anyHttp = f.httpMethod !== undefined || f.httpPath !== undefined || f.httpHost !== undefined || f.httpHeaders.length > 0;
  const anyKafka = f.kafkaApiKey !== undefined || f.kafkaApiVersion !== undefined || f.kafkaTopics.length > 0 || f.kafkaClientId !== undefined;
  if (anyHttp && anyKafka) throw new UsageError('a request is either HTTP (--http-*) or Kafka (--kafka-*), not both');
  let http: HttpRequest | undefined;
  if (anyHttp) {
    const headers = f.httpHeaders.map((h): [string, string] => {
      const c = h.indexOf(':');
      if (c <= 0) throw new UsageError(`--http-header: "${h}" is not "Name: value"`);
      return [h.slice(0, c).trim(), h.slice(c + 1).trim()];
    });
    const path = f.httpPath ?? '/';
    if (!path.startsWith('/') && path !== '*') throw new UsageError(`--http-path: "${path}" must start with /`);
    http = { method: f.httpMethod ?? 'GET', path, ...(f.httpHost !== undefined ? { host: f.httpHost } : {}), headers };
    if (f.httpHost !== undefined && !headers.some(([k]) => k.toLowerCase() === 'host')) http.headers = [...headers, ['host', f.httpHost]];
  }
  let kafka: KafkaRequest | undefined;
  if (anyKafka) {
    if (f.kafkaApiKey === undefined) throw new UsageError('--kafka-api-key is required for a Kafka request');
    const apiKey = kafkaApiKeyFromCli(f.kafkaApiKey);
    if (apiKey === undefined) throw new UsageError(`--kafka-api-key: unknown Kafka API key "${f.kafkaApiKey}"`);
    let apiVersion: number | undefined;
    if (f.kafkaApiVersion !== undefined) {
      if (!/^\d+$/.test(f.kafkaApiVersion) || Number(f.kafkaApiVersion) > 32767) throw new UsageError(`--kafka-api-version: "${f.kafkaApiVersion}" is not an integer 0-32767`);
      apiVersion = Number(f.kafkaApiVersion);
    }
    kafka = { apiKey, ...(apiVersion !== undefined ? { apiVersion } : {}), ...(f.kafkaClientId !== undefined ? { clientID: f.kafkaClientId } : {}), topics: f.kafkaTopics };
  }
  return {
    src: f.src,
    dst: f.dst,
    port,
    protocol: proto,
    ...(f.policyNamespace !== undefined ? { policyNamespace: f.policyNamespace } : {}),
    ...(http ? { http } : {}),
    ...(kafka ? { kafka } : {}),
    auditMode: f.auditMode,
    ...(f.allowLocalhost !== undefined ? { allowLocalhost: f.allowLocalhost as 'always' | 'policy' } : {}),
  };
}

/** Reads and parses every file; all errors of all files are returned together. */
function loadPolicies(files: readonly string[], cwd: string, defaultNamespace: string | undefined): { policies: ParsedPolicy[]; errors: string[] } {
  const sources: PolicySource[] = [];
  const errors: string[] = [];
  for (const file of files) {
    try {
      sources.push({ source: file, text: readFileSync(resolve(cwd, file), 'utf8') });
    } catch (err) {
      errors.push(`${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  try {
    const policies = parsePolicySources(sources, defaultNamespace !== undefined ? { defaultNamespace } : {});
    return { policies, errors };
  } catch (err) {
    if (!(err instanceof PolicyImportError)) throw err;
    return { policies: [], errors: [...errors, ...err.errors.map((e) => e.message)] };
  }
}

export async function runPolicyTrace(argv: string[], io: CliIo = processIo): Promise<number> {
  try {
    const flags = parseFlags(argv);
    if (flags.help) {
      io.stdout(POLICY_TRACE_HELP);
      return EXIT_OK;
    }
    const req = buildRequest(flags);
    const { policies, errors } = loadPolicies(flags.files, io.cwd ?? process.cwd(), flags.policyNamespace);
    if (errors.length > 0) {
      io.stderr(`policy trace: ${errors.length} error${errors.length === 1 ? '' : 's'} in the policy files, nothing applied:\n${errors.map((e) => `  ${e}\n`).join('')}`);
      return EXIT_USAGE;
    }
    const result = tracePolicies(policies, req);
    if (flags.output === 'json') io.stdout(JSON.stringify(result, null, 2) + '\n');
    else io.stdout(formatTraceText(result));
    return result.verdict === 'denied' ? EXIT_DENIED : EXIT_OK;
  } catch (err) {
    if (err instanceof UsageError || err instanceof TraceInputError) {
      io.stderr(`policy trace: ${err.message}\n`);
      return EXIT_USAGE;
    }
    // Never crash on any input: report and fail closed with the bad-input code.
    io.stderr(`policy trace: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return EXIT_USAGE;
  }
}

export const policyTraceCommand: Command = {
  words: ['policy', 'trace'],
  summary: 'trace whether a connection or request would be allowed, offline on policy files',
  run: runPolicyTrace,
};
