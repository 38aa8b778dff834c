// Runs each test suite (a folder under dist/test/) in its own mocha process so one
// suite crashing cannot hide the others, then prints the single closing line CI reads.
// A suite that exits non-zero without reporting a failure counts as one failure.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const SUITE_TIMEOUT_MS = 12 * 60 * 1000;
const root = new URL('..', import.meta.url).pathname;
const testRoot = join(root, 'dist/test');
const only = process.argv.slice(2);

// Suites run in this order: cheap ones first so a broken build shows up fast.
const ORDER = ['unit', 'xds', 'envoy', 'kernel', 'kafka', 'observe', 'agent', 'e2e', 'cluster'];
const found = existsSync(testRoot)
  ? readdirSync(testRoot).filter((d) => statSync(join(testRoot, d)).isDirectory() && d !== 'support')
  : [];
const suites = found
  .filter((s) => only.length === 0 || only.includes(s))
  .sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));

function rank(name) {
  const i = ORDER.indexOf(name);
  return i === -1 ? ORDER.length : i;
}

function listTests(dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listTests(p));
    else if (entry.name.endsWith('.test.js')) out.push(p);
  }
  return out.sort();
}

function runSuite(name) {
  const files = listTests(join(testRoot, name));
  if (files.length === 0) return Promise.resolve({ passed: 0, failed: 0, skipped: 0, crashed: false });
  const countFile = join(mkdtempSync(join(tmpdir(), 'l7mesh-count-')), 'count.json');
  const args = [
    // Lets tests that check memory bounds measure retained heap after a full GC.
    '--expose-gc',
    join(root, 'node_modules/mocha/bin/mocha.js'),
    '--reporter', join(root, 'scripts/count-reporter.cjs'),
    '--timeout', '60000',
    '--exit',
    ...files,
  ];
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, {
      cwd: root,
      stdio: 'inherit',
      env: { ...process.env, L7MESH_COUNT_FILE: countFile, L7MESH_SUITE: name },
    });
    const timer = setTimeout(() => {
      console.error(`[test] suite ${name} exceeded ${SUITE_TIMEOUT_MS / 60000} min, killing it`);
      child.kill('SIGKILL');
    }, SUITE_TIMEOUT_MS);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      let counts = { passed: 0, failed: 0, skipped: 0 };
      try {
        counts = JSON.parse(readFileSync(countFile, 'utf8'));
      } catch {
        // No count file: the suite died before mocha finished.
      }
      const crashed = (code !== 0 || signal !== null) && counts.failed === 0;
      if (crashed) console.error(`[test] suite ${name} crashed (exit ${code ?? signal}); counted as 1 failure`);
      resolve({ ...counts, failed: counts.failed + (crashed ? 1 : 0), crashed });
    });
  });
}

const total = { passed: 0, failed: 0, skipped: 0 };
for (const s of suites) {
  console.log(`\n=== suite ${s} ===`);
  const r = await runSuite(s);
  console.log(`=== suite ${s}: ${r.passed} passed, ${r.failed} failed${r.skipped ? `, ${r.skipped} skipped` : ''} ===`);
  total.passed += r.passed;
  total.failed += r.failed;
  total.skipped += r.skipped;
}
if (suites.length === 0) {
  console.error('[test] no suites found under dist/test (did the build run?)');
  total.failed += 1;
}
console.log(`${total.passed} passed, ${total.failed} failed${total.skipped ? `, ${total.skipped} skipped` : ''}`);
process.exit(total.failed > 0 ? 1 : 0);
