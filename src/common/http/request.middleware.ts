import { Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import { traceIncoming, withIncoming } from '../../telemetry/http-server';
import { requestContext, type RequestContext } from '../logging/request-context';

const VALID_ID = /^[A-Za-z0-9._-]{1,100}$/;
const logger = new Logger('HTTP');

/**
 * Every HTTP request's entry. Gives it an id (the caller's X-Request-Id when well-formed), echoed in the
 * response and carried by every log line written while serving it; a trace span and a duration metric
 * (telemetry/http-server.ts; not for probes and scrapes); and, when the response is sent, one access line
 * (never headers or bodies, so no API key reaches the logs).
 */
export function requestMiddleware(req: Request, res: Response, next: NextFunction): void {
  const incoming = req.header('x-request-id');
  const requestId = incoming && VALID_ID.test(incoming) ? incoming : randomUUID();
  res.setHeader('X-Request-Id', requestId);
  const started = process.hrtime.bigint();
  const ctx: RequestContext = { requestId };
  const path = req.originalUrl.split('?')[0];
  // Probes and scrapes would drown everything else: no span, no metric, access lines at debug level.
  const routine = path.startsWith('/health') || path === '/metrics';
  const traced = routine ? undefined : traceIncoming(req, path);
  // The rest of the request, and its access line, run in its context: its request id and, when traced, its span.
  const inContext = (fn: () => void) => (traced ? withIncoming(traced, () => requestContext.run(ctx, fn)) : requestContext.run(ctx, fn));
  res.on('finish', () => {
    traced?.end(res);
    inContext(() => {
      const entry = {
        msg: 'request',
        method: req.method,
        path,
        status: res.statusCode,
        durationMs: Number(process.hrtime.bigint() - started) / 1e6,
        ...(ctx.caller ? { caller: ctx.caller } : {}),
      };
      if (routine) logger.debug(entry);
      else logger.log(entry);
    });
  });
  // A client that goes away before its answer still ends the span and counts.
  if (traced) res.on('close', () => traced.end(res));
  inContext(next);
}
