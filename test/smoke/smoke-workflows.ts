import { proxyActivities, sleep } from '@temporalio/workflow';

export interface SmokeActivities {
  greet(name: string): Promise<string>;
}

const { greet } = proxyActivities<SmokeActivities>({ startToCloseTimeout: '10s' });

/** Runs one activity and a long timer, so both servers prove they can run a real workflow. */
export async function smokeWorkflow(name: string, sleepFor: string): Promise<string> {
  const greeting = await greet(name);
  await sleep(sleepFor);
  return greeting;
}
