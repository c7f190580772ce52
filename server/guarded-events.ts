/**
 * How a key server runs its own events — intervals, the timers the leaf plane asks for, the core
 * stack's upcalls — under one failure rule: a failing event is logged and the server goes on,
 * except a failed store write (isStoreFailure: the store's StoreError, or the first StorageError of
 * a write, a sync or a replace): the replica may then be ahead of its durable log, so
 * the server stops (onStoreFailure) and a restart reopens the store and catches up. Nothing
 * fires after stop().
 */
import { isStoreFailure } from '../leaf-plane/index.js';
import type { Logger } from './log.js';

export class GuardedEvents {
  private readonly intervals: NodeJS.Timeout[] = [];
  private stopped = false;

  constructor(
    private readonly log: Logger,
    private readonly onStoreFailure: (e: Error) => void,
  ) {}

  /** Runs `fn` every `ms` until stop. */
  every(ms: number, fn: () => void): void {
    if (this.stopped) return;
    this.intervals.push(setInterval(() => this.guard('timer', fn), ms));
  }

  /**
   * Runs `fn` once: 'end-of-event' before any other event (a microtask: the plane's group commit),
   * 0 once the current event is done, otherwise after `delay` ms (not holding the process open).
   */
  after(delay: number | 'end-of-event', what: string, fn: () => void): void {
    if (this.stopped) return;
    const fire = (): void =>
      this.guard(what, () => {
        if (!this.stopped) fn();
      });
    if (delay === 'end-of-event') queueMicrotask(fire);
    else if (delay === 0) setImmediate(fire);
    else setTimeout(fire, delay).unref();
  }

  /** One failing event must not take the server down: it is logged. A store failure does. */
  guard(what: string, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      if (isStoreFailure(e)) return this.onStoreFailure(e);
      this.log.error(`${what} failed`, { error: (e as Error).message });
    }
  }

  /** An asynchronous event (a file reloaded): its rejection falls under the same rule. */
  settle(what: string, work: Promise<unknown>): void {
    work.catch((e: unknown) => {
      if (isStoreFailure(e)) return this.onStoreFailure(e);
      this.log.error(`${what} failed`, { error: e instanceof Error ? e.message : String(e) });
    });
  }

  /** A stack upcall: a store failure stops the server too, and is rethrown to the stack. */
  upcall<T>(fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      if (isStoreFailure(e)) this.onStoreFailure(e);
      throw e;
    }
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.intervals) clearInterval(t);
  }
}
