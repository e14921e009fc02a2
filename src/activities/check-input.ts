/**
 * The workflow's input check, as a local activity: the rules are zod schemas (src/contract/schemas.ts),
 * and zod stays out of workflow code (loaded once per cached workflow, it cost about 0.8 MB each).
 * The worker runs it in-process; its answer is recorded in history, so replays agree with it.
 * Besides the contract, it applies what only the deployment knows (RerouteRules) and the one-consent-
 * per-group rule on the workflow ID.
 */
import { activityInfo } from '@temporalio/activity';
import {
  InvalidInputError,
  notifyTargetSchema,
  parseAvatarConsentInput,
  workflowIdForGroup,
  workflowIdProblem,
} from '../contract/index.js';
import type { CheckedInput, FieldIssue, ParsedAvatarConsentInput } from '../contract/index.js';
import { groupIdSchema } from '../rules/input.js';

/** Where a deployment lets people's browsers go after the consent page. */
export interface RerouteRules {
  /** Plain-http localhost redirects: only where the deployment is local (REROUTE_URL_ALLOW_LOCAL_HTTP). */
  allowLocalHttp?: boolean;
  /** When set, the only host names a rerouteUrl may have (REROUTE_URL_ALLOWED_HOSTS). */
  allowedHosts?: readonly string[] | null;
}

function rerouteProblems(input: ParsedAvatarConsentInput, rules: RerouteRules): FieldIssue[] {
  if (!input.rerouteUrl) return [];
  const url = new URL(input.rerouteUrl);
  const problems: FieldIssue[] = [];
  if (url.protocol === 'http:' && !rules.allowLocalHttp)
    problems.push({
      path: 'rerouteUrl',
      message: 'must be https: plain http to localhost is allowed only where the deployment is local',
    });
  const hosts = rules.allowedHosts;
  if (hosts && hosts.length > 0 && !hosts.includes(url.hostname.toLowerCase()))
    problems.push({ path: 'rerouteUrl', message: "must point at one of this deployment's allowed hosts" });
  return problems;
}

export function createInputActivities(rules: RerouteRules = {}) {
  return {
    // Async: Temporal activities return promises, though this one does no I/O.
    // eslint-disable-next-line @typescript-eslint/require-await
    async checkConsentInput(raw: unknown): Promise<CheckedInput> {
      try {
        const input = parseAvatarConsentInput(raw);
        const workflowId = activityInfo().workflowExecution?.workflowId ?? workflowIdForGroup(input.groupId);
        const idProblem = workflowIdProblem(workflowId, input.groupId);
        const fields = [
          ...(idProblem ? [{ path: '(workflowId)', message: idProblem }] : []),
          ...rerouteProblems(input, rules),
        ];
        if (fields.length === 0) return { ok: true, input };
        return {
          ok: false,
          fields,
          notify: input.notify ?? null,
          notifyInvalid: false,
          groupId: input.groupId,
        };
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
