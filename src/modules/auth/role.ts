import { registerEnumType } from '@nestjs/graphql';

export enum Role {
  ADMIN = 'admin',
  DATA_STEWARD = 'data_steward',
  ML_ENGINEER = 'ml_engineer',
  AUDITOR = 'auditor',
  INFERENCE_CLIENT = 'inference_client',
}

export const ROLES = Object.values(Role);

registerEnumType(Role, {
  name: 'Role',
  description: 'What an API key may do. admin may do everything.',
  valuesMap: {
    ADMIN: { description: 'Manages keys, grants, datasets and everything else.' },
    DATA_STEWARD: { description: 'Registers datasets, sets budgets, records external releases.' },
    ML_ENGINEER: { description: 'Requests finetunes on datasets granted to the key.' },
    AUDITOR: { description: 'Reads every dataset, ledger and model; spends nothing.' },
    INFERENCE_CLIENT: { description: 'Classifies images with models granted to the key.' },
  },
});
