import { Module } from '@nestjs/common';
import { PrivacyResolver } from './privacy.resolver';

/** GraphQL face of the pure accounting library in src/privacy. */
@Module({ providers: [PrivacyResolver] })
export class PrivacyModule {}
