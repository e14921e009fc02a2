/**
 * The dev stack's HeyGen sandbox keeps its groups in memory; they are saved to the state folder on
 * stop and restored on start, so workflows that survive a restart still find their group.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { z } from 'zod';
import type { CreateGroupInput, Sandbox } from '../heygen-sandbox/index.js';

const savedGroupsSchema = z.array(
  z.object({
    id: z.string().min(1),
    name: z.string(),
    consent_status: z.string().nullable(),
    status: z.enum(['processing', 'pending_consent', 'failed', 'completed']).nullable(),
    error: z.object({ code: z.string(), message: z.string() }).nullable(),
  }),
);

/** Writes every group of the sandbox (read through its admin API) to `file`; returns how many. */
export async function saveSandboxGroups(sandbox: Sandbox, file: string): Promise<number> {
  const response = await fetch(`${sandbox.url}/_sandbox/groups`, { signal: AbortSignal.timeout(2_000) });
  const body = z.object({ data: savedGroupsSchema }).parse(await response.json());
  writeFileSync(file, `${JSON.stringify(body.data, null, 2)}\n`);
  return body.data.length;
}

/** Creates the groups saved in `file` (if any) in the sandbox; returns how many. */
export function restoreSandboxGroups(sandbox: Sandbox, file: string): number {
  if (!existsSync(file)) return 0;
  const parsed = savedGroupsSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
  if (!parsed.success) {
    console.warn(`  (ignoring ${file}: not a list of sandbox groups)`);
    return 0;
  }
  let restored = 0;
  for (const group of parsed.data) {
    const input: CreateGroupInput = {
      id: group.id,
      name: group.name,
      consentStatus: group.consent_status,
      status: group.status,
      error: group.error,
    };
    try {
      sandbox.createGroup(input);
      restored += 1;
    } catch {
      // A group the sandbox no longer accepts: skip it, the rest still help.
    }
  }
  return restored;
}
