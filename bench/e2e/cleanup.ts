/**
 * Teardown registry: everything the benchmark creates (namespaces, OVS
 * daemons, the agent, micro-bench children) registers how to undo itself
 * here, so a normal finish, an exception and SIGINT/SIGTERM all end in the
 * same place.
 *
 * API: Cleanups, Step, installSignalHandlers
 *
 * A step runs at most once, whoever calls it first (its owner on the normal
 * path, runAll() on an abort); a second caller gets the same promise. Steps
 * run newest first, inside inCleanup() so they may still spawn commands after
 * an abort, and a failing step never stops the ones after it.
 */
import { abortWork, inCleanup } from './proc.ts';

/** An undo step: call it to undo now (once); later calls share the first run. */
export type Step = () => Promise<void>;

/** A stack of named async undo steps. */
export class Cleanups {
  /** Steps not started yet, oldest first. */
  private pending: { name: string; run: Step }[] = [];
  /** Steps started (by their owner or by runAll) and not finished. */
  private started = new Set<Promise<void>>();
  private running: Promise<void> | null = null;

  /** Registers `fn` as an undo step and returns the handle that runs it. */
  add(name: string, fn: () => Promise<void>): Step {
    let once: Promise<void> | null = null;
    const entry = {
      name,
      run: (): Promise<void> => {
        if (once) return once;
        this.pending = this.pending.filter((s) => s !== entry);
        const p = inCleanup(fn);
        const tracked = p.catch(() => undefined).finally(() => this.started.delete(tracked));
        this.started.add(tracked);
        once = p;
        return p;
      },
    };
    this.pending.push(entry);
    return entry.run;
  }

  /**
   * Runs every pending step, newest first, and waits for steps their owners
   * already started; concurrent callers share one pass.
   */
  runAll(log: (msg: string) => void = (m) => console.error(m)): Promise<void> {
    if (this.running) return this.running;
    this.running = (async () => {
      while (this.pending.length > 0 || this.started.size > 0) {
        const step = this.pending[this.pending.length - 1];
        if (!step) {
          await Promise.allSettled([...this.started]);
          continue;
        }
        try {
          await step.run();
        } catch (err) {
          log(`cleanup: ${step.name}: ${(err as Error).message}`);
        }
      }
    })().finally(() => {
      this.running = null;
    });
    return this.running;
  }
}

/**
 * On SIGINT/SIGTERM/SIGHUP: stop new work, kill traffic, run the cleanups,
 * then exit 128+signo. A second signal exits at once.
 */
export function installSignalHandlers(cleanups: Cleanups): void {
  const codes: Record<string, number> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };
  let caught = false;
  for (const sig of Object.keys(codes) as NodeJS.Signals[]) {
    process.on(sig, () => {
      if (caught) {
        console.error(`bench: second ${sig}, exiting without finishing cleanup`);
        process.exit(codes[sig]);
      }
      caught = true;
      console.error(`\nbench: ${sig} received, tearing down what this run created...`);
      void abortWork()
        .then(() => cleanups.runAll())
        .finally(() => {
          console.error('bench: teardown done');
          process.exit(codes[sig]);
        });
    });
  }
}
