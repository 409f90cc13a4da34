import { Module } from '@nestjs/common';
import { LedgerService } from '../ledger/ledger.service';
import { DatasetsResolver } from './datasets.resolver';
import { DatasetsService } from './datasets.service';

/** Datasets and the ledger service they write their first entry with (the ledger's GraphQL is in LedgerModule). */
@Module({
  providers: [DatasetsService, LedgerService, DatasetsResolver],
  exports: [DatasetsService, LedgerService],
})
export class DatasetsModule {}
