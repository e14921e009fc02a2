/** A workflow that exists only for the gateway tests: counts `checkNow` signals until told to finish. */
import { condition, defineQuery, defineSignal, setHandler } from '@temporalio/workflow';
import { checkNowSignal } from '../../src/contract/index.js';

export const checkNowCountQuery = defineQuery<number>('checkNowCount');
export const finishSignal = defineSignal('finish');

/** Returns how many `checkNow` signals it received before `finish`. */
export async function checkNowCounterWorkflow(): Promise<number> {
  let received = 0;
  let finished = false;
  setHandler(checkNowSignal, () => {
    received += 1;
  });
  setHandler(checkNowCountQuery, () => received);
  setHandler(finishSignal, () => {
    finished = true;
  });
  await condition(() => finished);
  return received;
}
