// Tests are TypeScript compiled by `tsc` into dist/ (npm test compiles first), so ava runs plain JS.
export default {
  files: ['dist/test/**/*.test.js'],
  timeout: '120s',
  concurrency: 2,
  workerThreads: false,
};
