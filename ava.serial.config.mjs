// The second pass of `npm test`: test files that disrupt the whole machine (a Docker restart), run
// alone after every other file has finished.
export default {
  files: ['dist/test/**/*.serial.js'],
  timeout: '5m',
  concurrency: 1,
  workerThreads: false,
};
