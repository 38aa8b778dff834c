// A stand-in agent run as its own process: loads the datapath, registers the
// workloads and attaches everything, then exits. Enforcement must outlive it.
import { Datapath, upsertEndpoint, upsertIpcache, writeConfig, cgroupIdOf } from '../../addon/index.js';

interface LoaderInput {
  node: string;
  proxy: { ip: string; port: number; cgroupDir: string };
  endpoints: Array<{ name: string; cgroupDir: string; endpointId: number; identity: number; ip: string; egress: boolean; ingress: boolean }>;
  ipcache: Array<{ cidr: string; identity: number }>;
}

const input = JSON.parse(process.argv[2] ?? '{}') as LoaderInput;
const dp = Datapath.load(input.node);
try {
  writeConfig(dp.maps, { proxyIpv4: input.proxy.ip, proxyPort: input.proxy.port });
  upsertIpcache(dp.maps, input.ipcache);
  for (const e of input.endpoints) {
    // The endpoint entry goes in before the programs: attached programs fail closed
    // for a cgroup they do not know.
    upsertEndpoint(dp.maps, {
      cgroupId: cgroupIdOf(e.cgroupDir), endpointId: e.endpointId, identity: e.identity, ipv4: e.ip,
      enforceEgress: e.egress, enforceIngress: e.ingress,
    });
    dp.attachWorkload(e.cgroupDir, e.name);
  }
  dp.attachProxy(input.proxy.cgroupDir);
} finally {
  dp.close();
}
console.log('loaded');
