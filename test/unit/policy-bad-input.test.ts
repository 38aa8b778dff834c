import assert from 'node:assert/strict';
import { basename } from 'node:path';
import {
  listCaseFiles, loadRunPolicyTrace, readCaseFile, runCaptured, TempDir, toArgv,
  type RunPolicyTrace,
} from './policy-trace-harness.js';

// Bad input for `l7mesh policy trace`: every case must exit 2, name the problem precisely
// on stderr (each expectError substring, case-insensitive; `$FILE` stands for the policy
// file's base name) and print no verdict, i.e. nothing of the import was applied.

interface BadCase {
  name: string;
  why: string;
  /** Policy YAML text; absent means the case is about the command line alone. */
  policy?: string;
  /** Extra valid policy imported together with the bad one (must not rescue it). */
  alsoImport?: string;
  /** Trace arguments after the -f options; defaults to a plain L4 query. */
  args?: string | string[];
  expectError: string[];
}

const DEFAULT_ARGS = ['--src', 'k8s:app=client', '--dst', 'k8s:app=server', '--dport', '80/TCP'];
const VALID_POLICY = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: valid-companion
spec:
  endpointSelector:
    matchLabels:
      app: server
  ingress:
  - fromEndpoints:
    - matchLabels:
        app: client
`;

const files = listCaseFiles((f) => f.startsWith('bad-'));
const seen = new Set<string>();

describe('policy trace: bad input is refused precisely and nothing is applied', function () {
  let run: RunPolicyTrace;
  const tmp = new TempDir();

  before(async () => {
    run = await loadRunPolicyTrace();
  });
  after(() => tmp.remove());

  it('has at least 25 bad-input cases', () => {
    let n = 0;
    for (const f of files) n += ((readCaseFile(f) as { cases: BadCase[] }).cases ?? []).length;
    assert.ok(n >= 25, `only ${n} bad-input cases`);
  });

  for (const fileName of files) {
    const { cases } = readCaseFile(fileName) as { cases: BadCase[] };
    describe(fileName.replace(/\.yaml$/, ''), () => {
      for (const c of cases) {
        assert.ok(c.name && c.why, `${fileName}: every case needs name and why`);
        assert.ok(Array.isArray(c.expectError) && c.expectError.length > 0, `${fileName} (${c.name}): expectError missing`);
        assert.ok(!seen.has(c.name), `duplicate case name "${c.name}"`);
        seen.add(c.name);
        it(c.name, async () => {
          const slug = c.name.replace(/[^A-Za-z0-9]+/g, '-').toLowerCase();
          const argv: string[] = [];
          if (c.alsoImport !== undefined) argv.push('-f', tmp.write(c.alsoImport, `${slug}-companion.yaml`));
          let file = '';
          if (c.policy !== undefined) {
            file = tmp.write(c.policy, `${slug}.yaml`);
            argv.push('-f', file);
          } else {
            argv.push('-f', tmp.write(VALID_POLICY, `${slug}-valid.yaml`));
          }
          const tail = c.args === undefined ? DEFAULT_ARGS : toArgv(c.args);
          argv.push(...tail);
          // Cases about --output itself bring their own; a second flag would mask theirs.
          if (!tail.includes('--output')) argv.push('--output', 'json');
          const r = await runCaptured(run, argv, tmp.path);
          const context = `\n  why: ${c.why}\n  exit: ${r.code}\n  stdout: ${r.stdout.trim()}\n  stderr: ${r.stderr.trim()}`;
          assert.equal(r.code, 2, `exit code must be 2 (bad input)${context}`);
          assert.ok(!/"verdict"/.test(r.stdout), `a verdict was printed although the input is invalid${context}`);
          const err = r.stderr.toLowerCase();
          for (const want of c.expectError) {
            const needle = want.replace('$FILE', file ? basename(file) : '').toLowerCase();
            assert.ok(err.includes(needle), `stderr lacks "${needle}"${context}`);
          }
        });
      }
    });
  }
});
