#!/usr/bin/env node
// The `keyglass` command. The TypeScript sources are compiled into dist/ by `npm ci` (prepare).
import { main } from '../dist/cli/main.js';

process.exitCode = await main(process.argv.slice(2));
