// Resolved-policy inputs shared by the golden tests (test/golden/<case>/) and the
// real-Envoy acceptance test: every golden configuration is also fed to Envoy.
import type { ProxyConfigInput } from '../../proxy-config/builders/proxy-resources.js';
import type { EndpointPolicy, PolicyEntry } from '../../policy/resolved.js';
import type { HttpRule, RuleOrigin } from '../../policy/l7-rules.js';

export const ID_WEB = 1001;
export const ID_GATEWAY = 1002;
export const ID_OTHER = 1003;
export const ID_GRPC_CLIENT = 1004;

export function origin(policy: string, path: string): RuleOrigin {
  return { policy, kind: 'CiliumNetworkPolicy', path };
}

export function httpRedirect(identity: number, port: number, rules: Array<[HttpRule, RuleOrigin]>, endPort = port): PolicyEntry {
  return {
    identity,
    port,
    endPort,
    protocol: 'TCP',
    verdict: 'redirect',
    l7: { parser: 'http', rules: rules.map(([rule, o]) => ({ rule, origin: o })) },
    origins: rules.map(([, o]) => o),
  };
}

export const OPEN = { enforced: false, entries: [] };

/** The example: web-server accepts from api-gateway on port 80 with two HTTP rules. */
export function exampleIngressPolicy(port = 80): EndpointPolicy {
  const p = (i: number) => origin('default/l7-rule', `spec.ingress[0].toPorts[0].rules.http[${i}]`);
  return {
    identity: ID_WEB,
    ingress: {
      enforced: true,
      entries: [
        httpRedirect(ID_GATEWAY, port, [
          [{ method: 'GET', path: '/api/v1/.*' }, p(0)],
          [{ method: 'POST', path: '/api/v1/data', headers: ['Content-Type: application/json'] }, p(1)],
        ]),
      ],
    },
    egress: OPEN,
  };
}

/** gRPC: only /demo.Greeter/SayHello (POST over HTTP/2) from the gRPC client identity. */
export function grpcIngressPolicy(port: number): EndpointPolicy {
  return {
    identity: ID_WEB,
    ingress: {
      enforced: true,
      entries: [
        httpRedirect(ID_GRPC_CLIENT, port, [
          [{ method: 'POST', path: '/demo\\.Greeter/SayHello' }, origin('default/grpc-rule', 'spec.ingress[0].toPorts[0].rules.http[0]')],
        ]),
      ],
    },
    egress: OPEN,
  };
}

export interface GoldenCase {
  name: string;
  input: ProxyConfigInput;
}

const LISTENER = { address: '127.0.0.1', port: 15001 };
const ADDRS = new Map<number, string[]>([
  [ID_WEB, ['10.200.0.10']],
  [ID_GATEWAY, ['10.200.0.21', '10.200.0.20']],
  [ID_OTHER, ['10.200.0.30']],
  [ID_GRPC_CLIENT, ['10.200.0.40']],
  [2, ['0.0.0.0/0']],
]);
const ACCESS_LOG = { clusterName: 'l7mesh-access-log' };

export const goldenCases: GoldenCase[] = [
  {
    name: 'l7-rule-example',
    input: {
      listener: LISTENER,
      endpoints: [{ name: 'default/web-server', ip: '10.200.0.10', policy: exampleIngressPolicy() }],
      identityAddresses: ADDRS,
      accessLog: ACCESS_LOG,
    },
  },
  {
    name: 'audit-mode',
    input: {
      listener: LISTENER,
      endpoints: [{ name: 'default/web-server', ip: '10.200.0.10', policy: exampleIngressPolicy(), audit: true }],
      identityAddresses: ADDRS,
      accessLog: ACCESS_LOG,
    },
  },
  {
    name: 'grpc-method',
    input: {
      listener: LISTENER,
      endpoints: [{ name: 'default/greeter', ip: '10.200.0.10', policy: grpcIngressPolicy(50051) }],
      identityAddresses: ADDRS,
      accessLog: ACCESS_LOG,
    },
  },
  {
    name: 'egress-and-combined',
    input: {
      listener: LISTENER,
      endpoints: [
        { name: 'default/web-server', ip: '10.200.0.10', policy: exampleIngressPolicy(8080) },
        {
          name: 'default/api-gateway',
          ip: '10.200.0.20',
          policy: {
            identity: ID_GATEWAY,
            ingress: OPEN,
            egress: {
              enforced: true,
              entries: [
                httpRedirect(ID_WEB, 8080, [[{ method: 'GET|HEAD' }, origin('default/gw-out', 'spec.egress[0].toPorts[0].rules.http[0]')]]),
              ],
            },
          },
        },
      ],
      identityAddresses: ADDRS,
      accessLog: ACCESS_LOG,
    },
  },
  {
    name: 'ranges-denies-l4-host-headers',
    input: {
      listener: { address: '0.0.0.0', port: 15001 },
      endpoints: [
        {
          name: 'prod/shop',
          ip: '10.200.0.10',
          policy: {
            identity: ID_WEB,
            ingress: {
              enforced: true,
              entries: [
                { identity: 0, port: 9000, endPort: 9010, protocol: 'TCP', verdict: 'redirect', origins: [origin('prod/shop-ranges', 'spec.ingress[0]')],
                  l7: { parser: 'http', rules: [{ rule: { host: 'shop\\.example\\.com', path: '/cart/.*', headerMatches: [{ name: 'X-Tenant', value: 'a' }, { name: 'X-Trace', mismatch: 'LOG' }] }, origin: origin('prod/shop-ranges', 'spec.ingress[0].toPorts[0].rules.http[0]') }] } },
                { identity: ID_OTHER, port: 9005, endPort: 9005, protocol: 'TCP', verdict: 'deny', origins: [origin('prod/deny-other', 'spec.ingressDeny[0]')] },
                { identity: ID_GATEWAY, port: 80, endPort: 80, protocol: 'TCP', verdict: 'allow', origins: [origin('prod/l4', 'spec.ingress[1]')] },
                httpRedirect(ID_GRPC_CLIENT, 80, [[{ headers: ['X-Api-Key'] }, origin('prod/keyed', 'spec.ingress[2].toPorts[0].rules.http[0]')]]),
                { identity: 0, port: 53, endPort: 53, protocol: 'UDP', verdict: 'allow', origins: [origin('prod/dns', 'spec.ingress[3]')] },
              ],
            },
            egress: OPEN,
          },
        },
      ],
      identityAddresses: ADDRS,
      upstreamSocketMark: 0x7e57,
    },
  },
];
