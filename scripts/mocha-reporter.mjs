// mocha's spec reporter, plus a small JSON file (path in SWITCHBOARD_TEST_STATS) that
// scripts/test.mjs reads: passes, failures, pending, and the test running now. The file is
// rewritten as each test starts and ends, so it still names the test in progress when the
// process dies of a signal (no 'end' event then).
import fs from 'node:fs';
import Mocha from 'mocha';

class SpecWithStats extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    const file = process.env.SWITCHBOARD_TEST_STATS;
    if (!file) return;
    let test = null;
    let hook = null;
    const write = (ended) => {
      const { passes = 0, failures = 0, pending = 0 } = runner.stats ?? {};
      fs.writeFileSync(file, JSON.stringify({ passes, failures, pending, current: hook ?? test, ended }));
    };
    const { EVENT_TEST_BEGIN, EVENT_TEST_END, EVENT_HOOK_BEGIN, EVENT_HOOK_END, EVENT_RUN_END } = Mocha.Runner.constants;
    runner.on(EVENT_TEST_BEGIN, (t) => {
      test = t.fullTitle();
      write(false);
    });
    runner.on(EVENT_TEST_END, () => {
      test = null;
      write(false);
    });
    runner.on(EVENT_HOOK_BEGIN, (h) => {
      hook = h.fullTitle();
      write(false);
    });
    runner.on(EVENT_HOOK_END, () => {
      hook = null;
    });
    // Registered after the spec reporter's own listener: its epilogue is printed first.
    runner.once(EVENT_RUN_END, () => {
      test = hook = null;
      write(true);
    });
    write(false);
  }
}

export default SpecWithStats;
