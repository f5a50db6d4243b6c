// A least-recently-used cache of promises with a size budget (bytes, or entries when sizes are 1).

export class LRU {
  constructor(budget) {
    this.budget = budget;
    this.total = 0;
    this.entries = new Map(); // key -> {promise, size}, oldest first
  }

  /** The cached promise for `key`, or load()'s; `sizeOf(value)` is charged once it resolves. Failures are not kept. */
  get(key, load, sizeOf = () => 1) {
    const hit = this.entries.get(key);
    if (hit) {
      this.entries.delete(key);
      this.entries.set(key, hit);
      return hit.promise;
    }
    const entry = { promise: load(), size: 0 };
    this.entries.set(key, entry);
    entry.promise.then(
      (value) => {
        if (this.entries.get(key) !== entry) return;
        entry.size = sizeOf(value);
        this.total += entry.size;
        this.evict();
      },
      () => this.entries.get(key) === entry && this.entries.delete(key),
    );
    return entry.promise;
  }

  evict() {
    for (const [key, entry] of this.entries) {
      if (this.total <= this.budget) break;
      this.entries.delete(key);
      this.total -= entry.size;
    }
  }
}
