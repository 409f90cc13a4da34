/**
 * Trains a DP head in a worker thread, so that the seconds of linear algebra (Gram matrices,
 * eigendecompositions, hundreds of DP-SGD steps) never block the event loop that serves the API and
 * keeps the job's heartbeat going. Noise is drawn inside the thread from node:crypto.
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { secureNoise } from '../../privacy';
import type { HeadResult } from '../heads';
import { sharedFeatureData, toShared } from '../heads/sharded-gradient';
import { trainHead } from './train-head';

/** What the thread needs: everything trainHead takes but the noise source, drawn inside the thread. */
type HeadJob = Omit<Parameters<typeof trainHead>[0], 'noise' | 'allowInsecureNoise' | 'onProgress'>;

type Message = { kind: 'progress'; step: number; total: number } | { kind: 'done'; head: HeadResult } | { kind: 'error'; message: string; code?: string };

export function trainHeadInThread(job: HeadJob, onProgress?: (step: number, total: number) => void): Promise<HeadResult> {
  // Shared, so that the training thread and its gradient helpers (DP_SGD) all read one copy of the features.
  const features = { ...job.features, data: sharedFeatureData(job.features.data) };
  const labels = toShared(job.labels, (b) => new Int32Array(b));
  return new Promise((resolve, reject) => {
    const worker = new Worker(__filename, { workerData: { ...job, features, labels } });
    let settled = false;
    worker.on('message', (m: Message) => {
      if (m.kind === 'progress') onProgress?.(m.step, m.total);
      else if (m.kind === 'done') {
        settled = true;
        resolve(m.head);
      } else {
        settled = true;
        reject(Object.assign(new Error(m.message), { code: m.code }));
      }
    });
    worker.on('error', (err) => {
      settled = true;
      reject(err);
    });
    worker.on('exit', (code) => {
      if (!settled) reject(new Error(`head training thread exited with code ${code}`));
    });
  });
}

if (!isMainThread && parentPort && workerData?.options) {
  const job = workerData as HeadJob;
  const port = parentPort;
  try {
    let last = 0;
    const head = trainHead({
      ...job,
      noise: secureNoise(),
      onProgress: (step, total) => {
        const now = Date.now();
        if (now - last > 200 || step === total) {
          last = now;
          port.postMessage({ kind: 'progress', step, total } satisfies Message);
        }
      },
    });
    port.postMessage({ kind: 'done', head } satisfies Message);
  } catch (err) {
    port.postMessage({ kind: 'error', message: (err as Error).message, code: (err as { code?: string }).code } satisfies Message);
  }
}
