// A hand-written fake clock for setTimeout/clearTimeout, the only timers the client uses.
// node:test's mock.timers would do, but its API changed between Node 18 and 20.4
// (`enable(["setTimeout"])` vs `enable({ apis: [...] })`) and Node 18's runAll() can spin
// forever; this one behaves the same on every Node version.
//
// Semantics follow node:test's mock timers, which these tests were written against:
// tick(ms) moves the clock to now + ms first, then runs every due timer in order of due
// time (ties: order of creation), including those that callbacks arm and that fall due by
// then; runAll() ticks to the latest timer pending at the call.

export class FakeClock {
  #now = 0;
  #nextId = 1;
  #timers = new Map(); // id → { id, runAt, callback, args }
  #saved = null;

  /** Replaces globalThis.setTimeout and clearTimeout until reset(). */
  enable() {
    if (this.#saved) throw new Error("FakeClock: already enabled");
    this.#saved = { setTimeout: globalThis.setTimeout, clearTimeout: globalThis.clearTimeout };
    globalThis.setTimeout = (callback, delay = 0, ...args) => {
      const id = this.#nextId++;
      const ms = Math.max(0, Number(delay) || 0);
      const timer = { id, runAt: this.#now + ms, callback, args };
      this.#timers.set(id, timer);
      return timer;
    };
    globalThis.clearTimeout = (timer) => {
      if (timer && typeof timer === "object") this.#timers.delete(timer.id);
    };
  }

  /** Restores the real timers and forgets every pending fake one. */
  reset() {
    if (this.#saved) {
      globalThis.setTimeout = this.#saved.setTimeout;
      globalThis.clearTimeout = this.#saved.clearTimeout;
      this.#saved = null;
    }
    this.#timers.clear();
    this.#now = 0;
  }

  /** How many timers are pending. */
  get pending() {
    return this.#timers.size;
  }

  tick(ms = 1) {
    if (!this.#saved) throw new Error("FakeClock: not enabled");
    if (!(ms >= 0)) throw new RangeError("FakeClock: tick needs a non-negative number");
    this.#now += ms;
    for (;;) {
      let due = null;
      for (const timer of this.#timers.values()) {
        if (timer.runAt <= this.#now && (due === null || timer.runAt < due.runAt ||
            (timer.runAt === due.runAt && timer.id < due.id))) {
          due = timer;
        }
      }
      if (due === null) return;
      this.#timers.delete(due.id);
      due.callback(...due.args);
    }
  }

  runAll() {
    let latest = this.#now;
    for (const timer of this.#timers.values()) latest = Math.max(latest, timer.runAt);
    this.tick(latest - this.#now);
  }
}

/** The clock the client tests share: enable() in beforeEach, reset() in afterEach. */
export const clock = new FakeClock();
