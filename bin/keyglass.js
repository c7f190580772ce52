#!/usr/bin/env node
// The `keyglass` command. The TypeScript sources are compiled into dist/ by `npm ci` (prepare).
import '../dist/cli/bin.js';
