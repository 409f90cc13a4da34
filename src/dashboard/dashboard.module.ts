import { Module } from '@nestjs/common';
import { DashboardController } from './dashboard.controller';

/** Serves the compliance dashboard at /dashboard (see README, "Compliance dashboard"). */
@Module({ controllers: [DashboardController] })
export class DashboardModule {}
