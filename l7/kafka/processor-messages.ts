// What the processor's worker thread and its parent say to each other.
import type { KafkaAuditRecord } from './audit.js';
import type { KafkaRule } from './rule.js';

export interface WorkerData {
  auditPath?: string;
  /** Send audit records to the parent (it turns them into flows). */
  forwardRecords: boolean;
  listen: { unix: string } | { unix?: undefined; host: string; port: number };
}

export type ParentMessage =
  | { type: 'policies'; seq: number; set: Array<[string, KafkaRule[]]>; deleted: string[] }
  | { type: 'flush'; seq: number }
  | { type: 'close' };

export type WorkerMessage =
  | { type: 'listening'; port?: number }
  | { type: 'failed'; error: string }
  | { type: 'ack'; seq: number }
  | { type: 'records'; records: KafkaAuditRecord[] }
  | { type: 'flushed'; seq: number }
  | { type: 'closed' };
