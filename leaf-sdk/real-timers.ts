/**
 * Named one-shot timers on node's clock, for a sans-IO machine's `setTimer`/`cancelTimer`
 * effects: at most one timer per name (setting one again replaces it). Only timers that should
 * keep the process alive do (`keepAlive`); the others are unref'd.
 */
export class RealTimers<Name> {
  private readonly running = new Map<Name, NodeJS.Timeout>();

  set(name: Name, afterMs: number, fire: () => void, keepAlive: boolean): void {
    clearTimeout(this.running.get(name));
    const timer = setTimeout(() => {
      this.running.delete(name);
      fire();
    }, afterMs);
    if (!keepAlive) timer.unref();
    this.running.set(name, timer);
  }

  cancel(name: Name): void {
    clearTimeout(this.running.get(name));
    this.running.delete(name);
  }

  cancelAll(): void {
    for (const t of this.running.values()) clearTimeout(t);
    this.running.clear();
  }
}
