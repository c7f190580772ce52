// Tests are TypeScript compiled by `tsc` into dist/ (npm test compiles first), so ava runs plain JS.
// KG_DIST lets a developer compile into another folder (tsc --outDir) and run only those tests.
const dist = process.env.KG_DIST ?? 'dist';

export default {
  files: [`${dist}/test/**/*.test.js`],
  timeout: '120s',
  concurrency: 2,
  workerThreads: false,
};
