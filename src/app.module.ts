import { ApolloDriver, ApolloDriverConfig } from '@nestjs/apollo';
import { DynamicModule, Global, Module } from '@nestjs/common';
import { GraphQLModule } from '@nestjs/graphql';
import { TypeOrmModule } from '@nestjs/typeorm';
import { ApolloServerPluginCacheControlDisabled, ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { ApolloServerPluginLandingPageLocalDefault } from '@apollo/server/plugin/landingPage/default';
import type { Request } from 'express';
import { APP_CONFIG, AppConfig } from './config/config';
import { createErrorFormatter } from './common/graphql/format-error';
import { queryLimitsPlugin } from './common/graphql/query-limits.plugin';
import { noStorePlugin } from './common/graphql/no-store.plugin';
import { JsonLogger } from './common/logging/json-logger';
import { DashboardModule } from './dashboard/dashboard.module';
import { AuthModule } from './modules/auth/auth.module';
import { dataSourceOptions } from './modules/database/data-source';
import { DatasetsModule } from './modules/datasets/datasets.module';
import { HealthModule } from './modules/health/health.module';
import { LedgerModule } from './modules/ledger/ledger.module';
import { MetricsModule } from './modules/metrics/metrics.module';
import { PrivacyModule } from './modules/privacy/privacy.module';
import { ServingModule } from './serving/serving.module';
import { TrainingModule } from './training/training.module';

/** Provides the validated configuration to every module. */
@Global()
@Module({})
class ConfigModule {
  static forRoot(config: AppConfig): DynamicModule {
    return { module: ConfigModule, providers: [{ provide: APP_CONFIG, useValue: config }], exports: [APP_CONFIG] };
  }
}

@Module({})
export class AppModule {
  static forRoot(opts: { config: AppConfig; databaseUrl: string; logger: JsonLogger }): DynamicModule {
    const { config, logger } = opts;
    const development = config.nodeEnv === 'development';
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot(config),
        TypeOrmModule.forRoot(dataSourceOptions(opts.databaseUrl)),
        GraphQLModule.forRoot<ApolloDriverConfig>({
          driver: ApolloDriver,
          path: '/graphql',
          autoSchemaFile: true,
          sortSchema: true,
          introspection: config.graphql.introspection,
          playground: false,
          includeStacktraceInErrorResponses: development,
          plugins: [
            config.graphql.playground ? ApolloServerPluginLandingPageLocalDefault({ embed: false }) : ApolloServerPluginLandingPageDisabled(),
            queryLimitsPlugin(config.graphql),
            // No field has a cache hint: Apollo's cache-control plugin would only wrap every resolver (no-store.plugin.ts).
            ApolloServerPluginCacheControlDisabled(),
            noStorePlugin,
          ],
          formatError: createErrorFormatter({ development, logger }),
          context: ({ req }: { req: Request }) => ({ req }),
        }),
        HealthModule,
        MetricsModule,
        AuthModule,
        PrivacyModule,
        DatasetsModule,
        LedgerModule,
        TrainingModule,
        ServingModule,
        DashboardModule,
      ],
    };
  }
}
