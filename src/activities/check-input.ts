/**
 * The workflow's input check, as a local activity: the rules are zod schemas (src/contract/schemas.ts),
 * and zod stays out of workflow code (loaded once per cached workflow, it cost about 0.8 MB each).
 * The worker runs it in-process; its answer is recorded in history, so replays agree with it.
 */
import { activityInfo } from '@temporalio/activity';
import {
  InvalidInputError,
  notifyTargetSchema,
  parseAvatarConsentInput,
  workflowIdForGroup,
  workflowIdProblem,
} from '../contract/index.js';
import type { CheckedInput } from '../contract/index.js';
import { groupIdSchema } from '../rules/input.js';

export function createInputActivities() {
  return {
    // Async: Temporal activities return promises, though this one does no I/O.
    // eslint-disable-next-line @typescript-eslint/require-await
    async checkConsentInput(raw: unknown): Promise<CheckedInput> {
      try {
        const input = parseAvatarConsentInput(raw);
        const workflowId = activityInfo().workflowExecution?.workflowId ?? workflowIdForGroup(input.groupId);
        const problem = workflowIdProblem(workflowId, input.groupId);
        if (problem) {
          const fields = [{ path: '(workflowId)', message: problem }];
          return {
            ok: false,
            fields,
            notify: input.notify ?? null,
            notifyInvalid: false,
            groupId: input.groupId,
          };
        }
        return { ok: true, input };
      } catch (err) {
        if (!(err instanceof InvalidInputError)) throw err;
        const fields = raw !== null && typeof raw === 'object' ? (raw as Record<string, unknown>) : {};
        const notify = notifyTargetSchema.safeParse(fields.notify);
        const groupId = groupIdSchema.safeParse(fields.groupId);
        return {
          ok: false,
          fields: err.fields,
          notify: notify.success ? notify.data : null,
          notifyInvalid: fields.notify !== undefined && fields.notify !== null && !notify.success,
          groupId: groupId.success ? groupId.data : null,
        };
      }
    },
  };
}

export type InputActivities = ReturnType<typeof createInputActivities>;
