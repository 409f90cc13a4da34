import { Module } from '@nestjs/common';
import { DatasetsModule } from '../datasets/datasets.module';
import { DatasetLedgerResolver, LedgerResolver } from './ledger.resolver';

@Module({
  imports: [DatasetsModule],
  providers: [LedgerResolver, DatasetLedgerResolver],
})
export class LedgerModule {}
