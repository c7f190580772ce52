/** `keyglass demo` — shows what is built so far on an embedded default. */
import type { Command } from './command.js';

export const demoCommand: Command = {
  name: 'demo',
  summary: 'run the embedded demonstration',
  help: 'Usage: keyglass demo\n\nRuns the embedded demonstration of what Keyglass has built so far.',
  async run(): Promise<number> {
    console.log('keyglass demo: the foundation is being built; nothing to demonstrate yet.');
    return 0;
  },
};
