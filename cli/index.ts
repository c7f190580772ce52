/** cli/ — the `keyglass` command. */
export { main } from './main.js';
export { CliError, type Command, parseFlags } from './command.js';
