import { Args, Query, Resolver } from '@nestjs/graphql';
import { BadInputError } from '../../common/errors/domain-errors';
import { calibrateNoiseMultiplier, computeEpsilon, parsePrivacyEvents } from '../../privacy';
import { PrivacyEstimate, PrivacyEstimateInput } from './dto/privacy-estimate.dto';
import { Accountant, accountantName, toAccountingEvents } from './dto/privacy-event.dto';

@Resolver()
export class PrivacyResolver {
  @Query(() => PrivacyEstimate, { description: 'Plans a release before spending anything: epsilon of events, or calibration.' })
  privacyEstimate(@Args('input') input: PrivacyEstimateInput): PrivacyEstimate {
    const accountant = accountantName(input.accountant);
    if ((input.events === undefined || input.events === null) === (input.calibrate === undefined || input.calibrate === null)) {
      throw new BadInputError('give exactly one of events or calibrate');
    }
    if (input.calibrate) {
      const c = input.calibrate;
      const r = calibrateNoiseMultiplier({ targetEpsilon: c.targetEpsilon, delta: input.delta, samplingRate: c.samplingRate, steps: c.steps, accountant });
      return { epsilon: r.epsilon, delta: input.delta, accountant: r.accountant as Accountant, noiseMultiplier: r.noiseMultiplier };
    }
    const events = parsePrivacyEvents(toAccountingEvents(input.events!));
    const r = computeEpsilon(events, input.delta, accountant);
    return { epsilon: r.epsilon, delta: r.delta, accountant: r.accountant as Accountant, noiseMultiplier: null };
  }
}
