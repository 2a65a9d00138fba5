#!/usr/bin/env node
// The embedded ClickHouse engine runs its inserts and queries on libuv's thread pool (4 threads
// by default), where the bus's write-ahead fdatasync also runs: a few long analyst queries must
// not queue the fsync every statement waits on. Set before anything uses the pool.
process.env.UV_THREADPOOL_SIZE ??= '16';
await import('../dist/cli/src/main.js');
