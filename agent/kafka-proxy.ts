// The agent's Kafka side: runs l7/kafka's processor that Envoy's Kafka filter chains call
// (on a worker thread of its own, see l7/kafka/processor-thread.ts), keeps its rule sets
// equal to what the resolved policies say (the same rule sets proxy-config/ builds chains
// for), and turns every audit record into a flow naming the policy rule that decided,
// next to the JSON-lines audit file the thread writes.

import { existsSync, lstatSync, mkdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { KafkaAuditLog, type KafkaAuditRecord } from '../l7/kafka/audit.js';
import { KafkaProcessorThread } from '../l7/kafka/processor-thread.js';
import { kafkaRuleSets, type KafkaPolicyEndpoint, type KafkaRuleSet } from '../l7/kafka/policy-map.js';
import { kafkaAuditToFlow } from '../observe/from-kafka-audit.js';
import type { FlowEndpoint, ObservedFlow } from '../observe/flow-model.js';
import type { IdentityResolver } from '../observe/endpoint-resolver.js';
import type { KafkaProcessorTarget } from '../proxy-config/builders/kafka.js';

export interface KafkaProxyOptions {
  /** JSON-lines audit trail (appended); omit to keep records in flows only. */
  auditPath?: string;
  /** Unix socket for the processor; default TCP on 127.0.0.1 with a free port. */
  socketPath?: string;
  /** Names identities in flows (the agent's identity allocator and endpoint table). */
  resolveIdentity?: IdentityResolver;
  /** Endpoint name → its identity, for the protected side of the flow. */
  endpointIdentity?: (endpoint: string) => number | undefined;
  onFlow?: (flow: ObservedFlow) => void;
  nodeName?: string;
  /** Told when the processor thread died and is started again. */
  onError?: (message: string) => void;
}

export class KafkaProxy {
  /** The records the processor thread sends back (listeners only; the thread writes the file). */
  readonly audit: KafkaAuditLog;
  readonly processor: KafkaProcessorThread;
  private sets = new Map<string, KafkaRuleSet>();
  private targetValue: KafkaProcessorTarget | undefined;

  constructor(private readonly opts: KafkaProxyOptions = {}) {
    this.audit = new KafkaAuditLog();
    this.processor = new KafkaProcessorThread({
      ...(opts.auditPath ? { auditPath: opts.auditPath } : {}),
      onRecords: (records) => {
        for (const r of records) this.audit.write(r);
      },
      ...(opts.onError ? { onError: opts.onError } : {}),
    });
    this.audit.onRecord((rec) => {
      if (!opts.onFlow) return;
      try {
        opts.onFlow(this.toFlow(rec));
      } catch {
        // A record that cannot become a flow is still in the audit file; enforcement goes on.
      }
    });
  }

  /** Starts the processor (once; later calls share the first); the answer goes to buildProxyResources({ kafka: { processor } }). */
  start(): Promise<KafkaProcessorTarget> {
    this.starting ??= this.listen().catch((err: Error) => {
      this.starting = undefined;
      throw new Error(`kafka processor: ${err.message}`);
    });
    return this.starting;
  }
  private starting: Promise<KafkaProcessorTarget> | undefined;

  private async listen(): Promise<KafkaProcessorTarget> {
    if (this.opts.socketPath) {
      mkdirSync(dirname(this.opts.socketPath), { recursive: true, mode: 0o700 });
      // A socket file left by a previous agent process would make the bind fail.
      if (existsSync(this.opts.socketPath) && lstatSync(this.opts.socketPath).isSocket()) rmSync(this.opts.socketPath);
      await this.processor.listenUnix(this.opts.socketPath);
      this.targetValue = { path: this.opts.socketPath };
    } else {
      this.targetValue = { address: '127.0.0.1', port: await this.processor.listen('127.0.0.1', 0) };
    }
    return this.targetValue;
  }

  get started(): boolean {
    return this.targetValue !== undefined;
  }

  get target(): KafkaProcessorTarget {
    if (!this.targetValue) throw new Error('KafkaProxy: start() first');
    return this.targetValue;
  }

  /**
   * Installs the rule sets of these endpoints and removes stale ones. Call before
   * publishing the proxy resources built from the same policies, so a chain never
   * names a rule set the processor does not have yet (it would refuse everything).
   * Throws (changing nothing) when the policies cannot become Kafka rule sets.
   */
  update(endpoints: readonly KafkaPolicyEndpoint[]): KafkaRuleSet[] {
    const sets = kafkaRuleSets(endpoints);
    const next = new Map(sets.map((s) => [s.name, s]));
    this.processor.setPolicies(new Map(sets.map((s) => [s.name, s.rules])));
    this.sets = next;
    return sets;
  }

  /** Resolves once every audit record written so far has reached `audit` listeners and flows. */
  flushed(): Promise<void> {
    return this.processor.flushed();
  }

  /** Resolves once the processor has the rule sets of the last update(). */
  applied(): Promise<void> {
    return this.processor.applied();
  }

  ruleSet(name: string): KafkaRuleSet | undefined {
    return this.sets.get(name);
  }

  /** The flow of one audit record; the policy and rule path name the CiliumNetworkPolicy rule. */
  toFlow(rec: KafkaAuditRecord): ObservedFlow {
    const set = this.sets.get(rec.policy);
    const epIdentity = set ? this.opts.endpointIdentity?.(set.endpoint) : undefined;
    let protectedSide: FlowEndpoint | undefined;
    if (epIdentity !== undefined) protectedSide = this.opts.resolveIdentity?.(epIdentity) ?? { identity: epIdentity, labels: [] };
    const origin = set && rec.rule !== null ? set.origins[rec.rule] : undefined;
    const flow = kafkaAuditToFlow(
      { ...rec, errorCode: rec.verdict === 'deny' ? rec.errorCode : 0 },
      {
        ...(this.opts.resolveIdentity ? { resolveIdentity: this.opts.resolveIdentity } : {}),
        ...(protectedSide ? { destination: protectedSide } : {}),
        direction: set?.direction ?? 'ingress',
        ...(this.opts.nodeName ? { nodeName: this.opts.nodeName } : {}),
      },
    );
    const decision = flow.policy[0];
    if (decision && set) {
      // For egress rule sets the protected endpoint is the client; swap the sides.
      if (set.direction === 'egress' && protectedSide) [flow.source, flow.destination] = [protectedSide, flow.source];
      decision.name = origin?.policy ?? set.origins[0]?.policy ?? rec.policy;
      if (origin) decision.rule_path = origin.path;
    }
    return flow;
  }

  async stop(): Promise<void> {
    await this.processor.close();
    await this.audit.close();
  }
}
