import { Module } from '@nestjs/common';
import { DatasetsModule } from '../datasets/datasets.module';
import { LedgerMetrics } from './ledger.metrics';
import { DatasetLedgerResolver, LedgerResolver } from './ledger.resolver';

@Module({
  imports: [DatasetsModule],
  providers: [LedgerResolver, DatasetLedgerResolver, LedgerMetrics],
})
export class LedgerModule {}
