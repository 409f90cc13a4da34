/**
 * Calls awaiting a worker thread's reply, matched by id. The serving decode thread and the ONNX extractor
 * threads use it: `call` sends a request carrying a fresh id, the thread's reply settles it, and when the
 * thread dies every call it held fails with the reason. `idle` lets a closing owner wait for the calls in
 * flight before it terminates the thread.
 */
export class ThreadCalls<T> {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (value: T) => void; reject: (err: Error) => void }>();
  private idleWaiters: (() => void)[] = [];

  /** Sends a request (`send` posts it with the given id) and resolves with the reply to that id. */
  call(send: (id: number) => void): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      try {
        send(id);
      } catch (err) {
        this.waiting.delete(id);
        reject(err as Error);
      }
    });
  }

  /** Settles call `id` with a value or an error; ids no longer waiting (already failed) are ignored. */
  settle(id: number, reply: { value: T } | { error: Error }): void {
    const w = this.waiting.get(id);
    if (!w) return;
    this.waiting.delete(id);
    if ('error' in reply) w.reject(reply.error);
    else w.resolve(reply.value);
    this.wakeIdle();
  }

  /** Fails every waiting call (the thread is gone). */
  failAll(err: Error): void {
    for (const w of this.waiting.values()) w.reject(err);
    this.waiting.clear();
    this.wakeIdle();
  }

  /** Calls waiting for their reply. */
  get pending(): number {
    return this.waiting.size;
  }

  /** Resolves once no call is waiting for its reply (at once when none is). */
  idle(): Promise<void> {
    if (this.waiting.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private wakeIdle(): void {
    if (this.waiting.size > 0 || this.idleWaiters.length === 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}
