/** Per-request context (request id, caller) carried through async calls, for logs. */
import { AsyncLocalStorage } from 'node:async_hooks';

export interface RequestContext {
  requestId: string;
  caller?: string;
}

export const requestContext = new AsyncLocalStorage<RequestContext>();
