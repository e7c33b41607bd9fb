/**
 * Last-resort clean-up for test harnesses: a test process that dies (a failed assertion
 * past its after() hook, an uncaught error, Ctrl-C) must not leave daemons, mounts or
 * cgroups behind. Only synchronous work can run then.
 */

const cleanups = new Map<() => void, string>();
let installed = false;

/** Runs `cleanup` if the process exits before the returned function is called. */
export function cleanUpAtExit(what: string, cleanup: () => void): () => void {
  if (!installed) install();
  cleanups.set(cleanup, what);
  return () => {
    cleanups.delete(cleanup);
  };
}

function runAll(): void {
  for (const [cleanup, what] of cleanups) {
    try {
      cleanup();
    } catch (error) {
      process.stderr.write(`procview integration: ${what} clean-up at exit failed: ${(error as Error).message}\n`);
    }
  }
  cleanups.clear();
}

function install(): void {
  installed = true;
  process.once("exit", runAll);
  // A run interrupted by a signal never reaches "exit": clean up, then let the signal act.
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    const onSignal = () => {
      runAll();
      process.off(signal, onSignal);
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}
