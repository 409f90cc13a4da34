import { Controller, Get, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { prometheusExporter } from '../../telemetry/telemetry';
import { Public } from '../auth/auth.decorators';

/** OpenTelemetry metrics in Prometheus text format. */
@Public()
@Controller('metrics')
export class MetricsController {
  @Get()
  metrics(@Req() req: Request, @Res() res: Response): void {
    prometheusExporter().getMetricsRequestHandler(req, res);
  }
}
