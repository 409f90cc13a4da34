/**
 * How far V8 lets the server's old generation grow past what survived the last full collection before it
 * starts the next one.
 *
 * Under load V8 picked a factor of 1.3-1.6 for the server's ~60 MB of live heap, which left ~30 MB of room:
 * less than the young generation's capacity (2 x 16 MB), so V8 started incremental marking again as soon
 * as the last one ended, and the whole heap was marked about once a second at concurrency 32 (its helper
 * threads took as much CPU as JPEG decoding). A fixed factor of 2 leaves room for more than a young
 * generation's promotion: 1-2 full collections in 14 s at concurrency 32 instead of 18-20, the helpers' CPU
 * halved, and classify 3-4% faster (docs/benchmarks.md). The cost is at most one live heap's worth of memory.
 *
 * The flag is read each time V8 recomputes its limits, so setting it at start-up, before the first full
 * collection, applies to the whole process (worker threads included).
 */
import { setFlagsFromString } from 'node:v8';

export const HEAP_GROWING_PERCENT = 100;

export function setHeapGrowth(): void {
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}
