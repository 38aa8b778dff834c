// The Kafka rule l7mesh enforces: Cilium's PortRuleKafka fields. The policy resolver
// maps `rules.kafka[]` of a CiliumNetworkPolicy into this shape after validating it.

export type KafkaRole = 'produce' | 'consume';

export interface KafkaRule {
  /** Shorthand for a set of API keys; exclusive with apiKey. */
  role?: KafkaRole;
  /** An API key name as Cilium spells it ("produce", "metadata", "offsets", ...). */
  apiKey?: string;
  /** Exact API version, as a decimal string (Cilium's type). */
  apiVersion?: string;
  /** Exact client id. */
  clientID?: string;
  /** Exact topic name; empty or absent matches any topic. */
  topic?: string;
}
