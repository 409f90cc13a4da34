/**
 * Lowers the scheduling priority of the calling thread only (Linux: setpriority on the thread's id, which
 * /proc/thread-self names). Threads that run long computations (ONNX Runtime passes) use it so that the
 * event loop, which parses, authenticates and answers requests, and the decode thread preempt them at
 * once instead of waiting for the end of a time slice: on a saturated machine the loop was the bottleneck
 * and the passes ran in what it left. Raising a nice value needs no privilege; it cannot be undone.
 *
 * Returns the thread's nice value afterwards, or undefined where threads cannot be told apart this way
 * (not Linux): best effort, never an error.
 */
import { readlinkSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

export function lowerThreadPriority(nice: number): number | undefined {
  if (process.platform !== 'linux') return undefined;
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (!Number.isInteger(tid) || tid <= 0) return undefined;
    if (nice > getPriority(tid)) setPriority(tid, nice);
    return getPriority(tid);
  } catch {
    return undefined;
  }
}
