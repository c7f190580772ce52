/** Process entry of the `keyglass` command (bin/keyglass.js loads the compiled form). */
import { main } from './main.js';

process.exitCode = await main(process.argv.slice(2));
