// Mocha reporter: the usual spec output, plus the counts written to the file named by
// L7MESH_COUNT_FILE so scripts/run-tests.mjs can add up every suite. Skipped tests
// must say why: a pending test prints its title, and the title should carry the reason.
'use strict';
const fs = require('node:fs');
const Mocha = require('mocha');
const { Spec } = Mocha.reporters;
const { EVENT_RUN_END, EVENT_TEST_PENDING } = Mocha.Runner.constants;

class CountReporter extends Spec {
  constructor(runner, options) {
    super(runner, options);
    runner.on(EVENT_TEST_PENDING, (test) => {
      console.log(`      [skipped] ${test.fullTitle()}`);
    });
    runner.once(EVENT_RUN_END, () => {
      const s = runner.stats || {};
      const file = process.env.L7MESH_COUNT_FILE;
      if (file) {
        fs.writeFileSync(file, JSON.stringify({ passed: s.passes || 0, failed: s.failures || 0, skipped: s.pending || 0 }));
      }
    });
  }
}
module.exports = CountReporter;
