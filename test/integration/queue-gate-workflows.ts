/** A workflow that runs `n` activities at once on another task queue (the HeyGen queue stand-in). */
import { proxyActivities } from '@temporalio/workflow';

export async function hitMany(activityQueue: string, n: number): Promise<void> {
  const { hit } = proxyActivities<{ hit(): Promise<void> }>({
    startToCloseTimeout: '10s',
    taskQueue: activityQueue,
  });
  await Promise.all(Array.from({ length: n }, () => hit()));
}
