import { Controller, Get, Inject, NotFoundException, Param, Res } from '@nestjs/common';
import type { Response } from 'express';
import { APP_CONFIG, AppConfig } from '../config/config';
import { Public } from '../modules/auth/auth.decorators';
import { CHART_JS_PATH, DashboardAsset, loadDashboardAssets } from './dashboard.assets';

/**
 * Strict policy for the page: only scripts, styles and connections of this origin (no inline code), no
 * framing. The API key lives in sessionStorage, so keeping foreign script out is what protects it.
 */
const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/**
 * The compliance dashboard: static files only, public (no API key); every datum is read by the page from
 * GraphQL with the key the user signs in with.
 */
@Public()
@Controller('dashboard')
export class DashboardController {
  private readonly assets: Map<string, DashboardAsset>;

  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {
    this.assets = loadDashboardAssets();
  }

  @Get()
  page(@Res() res: Response): void {
    this.send(res, '');
  }

  @Get('vendor/chart.umd.min.js')
  chartJs(@Res() res: Response): void {
    this.send(res, CHART_JS_PATH);
  }

  @Get(':file')
  file(@Param('file') file: string, @Res() res: Response): void {
    this.send(res, file);
  }

  private send(res: Response, path: string): void {
    const asset = this.assets.get(path);
    // Worker processes serve no GraphQL, so no dashboard either.
    if (!asset || this.config.role === 'worker') throw new NotFoundException();
    res.set({
      'Content-Type': asset.contentType,
      'Cache-Control': 'no-cache',
      ETag: asset.etag,
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
      'Content-Security-Policy': CSP,
    });
    res.send(asset.body); // answers 304 when If-None-Match matches the ETag
  }
}
