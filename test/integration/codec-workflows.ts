// A small workflow that carries the same kind of personal data as the real one (an email address and a
// consent link) through every place Temporal records a payload: input, activity arguments and result,
// a signal, the workflow result, and UI summaries.
import { condition, defineSignal, proxyActivities, setHandler } from '@temporalio/workflow';

export interface CodecProbeInput {
  email: string;
  consentUrl: string;
}

export interface DeliveryReceipt {
  deliveredTo: string;
  link: string;
}

export interface CodecProbeResult {
  receipt: DeliveryReceipt;
  confirmation: CodecProbeInput;
}

export interface CodecProbeActivities {
  deliverConsentLink(email: string, consentUrl: string): Promise<DeliveryReceipt>;
}

export const confirmRecipientSignal = defineSignal<[CodecProbeInput]>('confirmRecipient');

export async function codecProbeWorkflow(input: CodecProbeInput): Promise<CodecProbeResult> {
  let confirmation: CodecProbeInput | undefined;
  setHandler(confirmRecipientSignal, (value) => {
    confirmation = value;
  });
  // The activity summary (shown in the UI) is a payload too; it names the person on purpose.
  const { deliverConsentLink } = proxyActivities<CodecProbeActivities>({
    startToCloseTimeout: '30s',
    summary: `deliver the consent link to ${input.email}`,
  });
  const receipt = await deliverConsentLink(input.email, input.consentUrl);
  await condition(() => confirmation !== undefined);
  return { receipt, confirmation: confirmation! };
}
