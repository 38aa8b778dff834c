// The commands that talk to the agent's REST API, in the order `l7mesh --help` lists them.

import type { Command } from './registry.js';
import { statusCommand } from './commands/status.js';
import { endpointListCommand } from './commands/endpoint-list.js';
import { endpointGetCommand } from './commands/endpoint-get.js';
import { endpointCreateCommand } from './commands/endpoint-create.js';
import { endpointDeleteCommand } from './commands/endpoint-delete.js';
import { endpointLabelsCommand } from './commands/endpoint-labels.js';
import { identityListCommand } from './commands/identity-list.js';
import { identityGetCommand } from './commands/identity-get.js';
import { policyImportCommand } from './commands/policy-import.js';
import { policyGetCommand } from './commands/policy-get.js';
import { policyDeleteCommand } from './commands/policy-delete.js';
import { policyWaitCommand } from './commands/policy-wait.js';
import { policySelectorsCommand } from './commands/policy-selectors.js';
import { bpfPolicyGetCommand } from './commands/bpf-policy-get.js';
import { bpfIpcacheListCommand } from './commands/bpf-ipcache-list.js';
import { bpfLbListCommand } from './commands/bpf-lb-list.js';
import { serviceCreateCommand } from './commands/service-create.js';
import { serviceListCommand } from './commands/service-list.js';
import { serviceDeleteCommand } from './commands/service-delete.js';
import { secretCreateCommand, secretUpdateCommand } from './commands/secret-create.js';
import { secretListCommand } from './commands/secret-list.js';
import { secretDeleteCommand } from './commands/secret-delete.js';
import { monitorCommand } from './commands/monitor.js';
import { observeCommand } from './commands/observe.js';
import { debuginfoCommand } from './commands/debuginfo.js';
import { connectivityTestCommand } from './commands/connectivity-test.js';
import { caRotateCommand } from './commands/ca-rotate.js';

export const AGENT_COMMANDS: Command[] = [
  statusCommand,
  endpointListCommand,
  endpointGetCommand,
  endpointCreateCommand,
  endpointDeleteCommand,
  endpointLabelsCommand,
  identityListCommand,
  identityGetCommand,
  policyImportCommand,
  policyGetCommand,
  policyDeleteCommand,
  policyWaitCommand,
  policySelectorsCommand,
  bpfPolicyGetCommand,
  bpfIpcacheListCommand,
  bpfLbListCommand,
  serviceCreateCommand,
  serviceListCommand,
  serviceDeleteCommand,
  secretCreateCommand,
  secretUpdateCommand,
  secretListCommand,
  secretDeleteCommand,
  monitorCommand,
  observeCommand,
  connectivityTestCommand,
  caRotateCommand,
  debuginfoCommand,
];
