/**
 * CommandOutbox — the way into the core's total order for one server's leaf-state commands.
 *
 * Every admit, leave, renewal and cut is a command; one ordered multicast each would spend the
 * stack's send window (nakack `windowMsgs` unstable messages per member, reopened as STATUS
 * reports make them stable, or at once for a member alone) one message per leaf, capping
 * admissions at a few hundred a second whatever the hardware. Instead, the commands submitted during one event-loop turn wait here and
 * leave together, packed into as few `commands` messages as the stack's payload bound allows.
 * Order is kept (FIFO from this server, like the multicasts it replaces). The outbox is bounded:
 * `submit` refuses when it is full (backpressure to the leaf, as a refused multicast was), and a
 * message the stack refuses stays queued for the next `flush` (the server's tick).
 */
import { encodeCommand, type LeafCommand } from './commands.js';
import {
  encodeCoreMessage,
  MAX_COMMAND_BYTES,
  MAX_COMMANDS_PER_MESSAGE,
  MAX_CORE_MESSAGE_BYTES,
} from './core-messages.js';

/** Worst-case framing of one `commands` message: union tag, list count, and per item its length. */
const MESSAGE_OVERHEAD_BYTES = 16;
const ITEM_OVERHEAD_BYTES = 4;

export interface CommandOutboxDeps {
  /** One ordered multicast; false = refused (the stack's send queue is full). */
  multicast(payload: Uint8Array): boolean;
  /** Runs `flush` once the current event is done (the server uses setImmediate). */
  schedule(flush: () => void): void;
}

export class CommandOutbox {
  private queue: Uint8Array[] = [];
  private scheduled = false;
  /** Messages the stack refused (retried later). */
  refusedByStack = 0;

  constructor(
    private readonly maxQueued: number,
    private readonly deps: CommandOutboxDeps,
  ) {
    if (!(Number.isInteger(maxQueued) && maxQueued >= 1)) throw new RangeError('maxQueued must be ≥ 1');
  }

  get queued(): number {
    return this.queue.length;
  }

  /** Accepts a command for the total order, or refuses it: false when the outbox is full. */
  submit(cmd: LeafCommand): boolean {
    if (this.queue.length >= this.maxQueued) return false;
    const bytes = encodeCommand(cmd);
    if (bytes.length > MAX_COMMAND_BYTES) throw new RangeError(`command of ${bytes.length} bytes`);
    this.queue.push(bytes);
    if (!this.scheduled) {
      this.scheduled = true;
      this.deps.schedule(() => {
        this.scheduled = false;
        this.flush();
      });
    }
    return true;
  }

  /** Multicasts everything queued, packed; stops at the stack's first refusal. */
  flush(): void {
    while (this.queue.length > 0) {
      let n = 0;
      let size = MESSAGE_OVERHEAD_BYTES;
      while (n < this.queue.length && n < MAX_COMMANDS_PER_MESSAGE) {
        const next = size + this.queue[n]!.length + ITEM_OVERHEAD_BYTES;
        if (next > MAX_CORE_MESSAGE_BYTES) break;
        size = next;
        n++;
      }
      const payload = encodeCoreMessage({ kind: 'commands', value: { commands: this.queue.slice(0, n) } });
      if (!this.deps.multicast(payload)) {
        this.refusedByStack++;
        return;
      }
      this.queue = this.queue.slice(n);
    }
  }

  /** Drops what waits (the server is stopping). */
  clear(): void {
    this.queue = [];
  }
}
