import assert from 'node:assert/strict';
import {
  listCaseFiles, loadRunPolicyTrace, readCaseFile, runCaptured, TempDir, toArgv,
  type RunPolicyTrace,
} from './policy-trace-harness.js';

// Table-driven acceptance cases for `l7mesh policy trace`: each YAML file under
// test/unit/policy-trace-cases/ (except bad-*.yaml) holds groups of policies and the
// verdicts Cilium documents for them. One case is one `it()`.

type Verdict = 'allowed' | 'denied' | 'audit';
const EXIT_FOR: Record<Verdict, number> = { allowed: 0, audit: 0, denied: 1 };

interface TraceCase {
  name: string;
  why: string;
  args: string | string[];
  expect: Verdict;
  expectRule?: string;
}

interface CaseGroup {
  title?: string;
  policies: string | string[];
  cases: TraceCase[];
}

interface CaseFile {
  theme?: string;
  policies?: string | string[];
  cases?: TraceCase[];
  groups?: CaseGroup[];
}

function groupsOf(file: CaseFile, fileName: string): CaseGroup[] {
  const groups: CaseGroup[] = [];
  if (file.cases) {
    if (file.policies === undefined) throw new Error(`${fileName}: top-level cases need top-level policies`);
    groups.push({ title: file.theme, policies: file.policies, cases: file.cases });
  }
  for (const g of file.groups ?? []) groups.push(g);
  if (groups.length === 0) throw new Error(`${fileName}: no cases`);
  return groups;
}

function checkCaseShape(c: TraceCase, where: string): void {
  assert.ok(typeof c.name === 'string' && c.name.length > 0, `${where}: name missing`);
  assert.ok(typeof c.why === 'string' && c.why.length > 0, `${where} (${c.name}): why missing`);
  assert.ok(c.expect in EXIT_FOR, `${where} (${c.name}): expect must be allowed|denied|audit, got ${String(c.expect)}`);
  assert.ok(c.args !== undefined, `${where} (${c.name}): args missing`);
}

const files = listCaseFiles((f) => !f.startsWith('bad-'));
const seen = new Set<string>();

describe('policy trace: table of documented Cilium/Kubernetes verdicts', function () {
  let run: RunPolicyTrace;
  const tmp = new TempDir();

  before(async () => {
    run = await loadRunPolicyTrace();
  });
  after(() => tmp.remove());

  it('has at least 150 cases with unique names', () => {
    let n = 0;
    for (const f of files) for (const g of groupsOf(readCaseFile(f) as CaseFile, f)) n += g.cases.length;
    assert.ok(n >= 150, `only ${n} trace cases`);
  });

  for (const fileName of files) {
    const file = readCaseFile(fileName) as CaseFile;
    describe(fileName.replace(/\.yaml$/, ''), () => {
      groupsOf(file, fileName).forEach((group, gi) => {
        describe(group.title ?? `group ${gi}`, () => {
          let policyArgs: string[] = [];
          before(() => {
            const docs = Array.isArray(group.policies) ? group.policies : [group.policies];
            policyArgs = docs.flatMap((text) => ['-f', tmp.write(text)]);
          });
          for (const c of group.cases) {
            const where = `${fileName} group ${gi}`;
            checkCaseShape(c, where);
            assert.ok(!seen.has(c.name), `duplicate case name "${c.name}" in ${where}`);
            seen.add(c.name);
            it(`${c.name} → ${c.expect}`, async () => {
              const argv = [...policyArgs, ...toArgv(c.args), '--output', 'json'];
              const r = await runCaptured(run, argv, tmp.path);
              const context = `\n  why: ${c.why}\n  args: ${toArgv(c.args).join(' ')}\n  exit: ${r.code}\n  stdout: ${r.stdout.trim()}\n  stderr: ${r.stderr.trim()}`;
              assert.notEqual(r.code, 2, `trace rejected the input as bad:${context}`);
              let out: { verdict?: string; matchedRules?: unknown[] };
              try {
                out = JSON.parse(r.stdout);
              } catch {
                assert.fail(`stdout is not one JSON document:${context}`);
              }
              assert.equal(out.verdict, c.expect, `verdict${context}`);
              assert.equal(r.code, EXIT_FOR[c.expect], `exit code for ${c.expect}${context}`);
              // The default text output must reach the same decision (same exit code).
              const text = await runCaptured(run, [...policyArgs, ...toArgv(c.args)], tmp.path);
              assert.equal(text.code, r.code, `text output exit code differs from JSON${context}\n  text stdout: ${text.stdout.trim()}`);
              assert.ok(text.stdout.trim().length > 0, `text output is empty${context}`);
              if (c.expectRule !== undefined) {
                const rules = (out.matchedRules ?? []).map((m) => (typeof m === 'string' ? m : JSON.stringify(m)));
                assert.ok(
                  rules.some((m) => m.includes(c.expectRule!)),
                  `no matchedRules entry contains "${c.expectRule}": ${JSON.stringify(out.matchedRules)}${context}`,
                );
              }
            });
          }
        });
      });
    });
  }
});
