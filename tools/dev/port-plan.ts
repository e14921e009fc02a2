/** Every port of the dev stack free and distinct, checked before anything starts. */
import { isPortBusy } from '../kit/ports.js';
import { DEV_HOST } from './settings.js';
import type { DevStackSettings } from './settings.js';

interface PlannedPort {
  what: string;
  port: number;
  variable: string;
}

function plannedPorts({ ports, ui }: DevStackSettings): PlannedPort[] {
  return [
    { what: 'Temporal gRPC', port: ports.temporal, variable: 'DEV_TEMPORAL_PORT' },
    ...(ui ? [{ what: 'Temporal Web UI', port: ports.temporalUi, variable: 'DEV_TEMPORAL_UI_PORT' }] : []),
    { what: 'HeyGen sandbox', port: ports.sandbox, variable: 'DEV_SANDBOX_PORT' },
    { what: 'mail catcher SMTP', port: ports.smtp, variable: 'DEV_SMTP_PORT' },
    { what: 'web inbox', port: ports.inbox, variable: 'DEV_INBOX_PORT' },
    { what: 'consent-return gateway', port: ports.gateway, variable: 'DEV_GATEWAY_PORT' },
  ];
}

/** What stands in the way, one line each; empty when every port is free. Two pieces on one port throw. */
export async function portProblems(settings: DevStackSettings): Promise<string[]> {
  const planned = plannedPorts(settings);
  const seen = new Map<number, PlannedPort>();
  for (const entry of planned) {
    const other = seen.get(entry.port);
    if (other) {
      throw new Error(
        `${other.what} and ${entry.what} are both on port ${entry.port}: change ${other.variable} or ${entry.variable}.`,
      );
    }
    seen.set(entry.port, entry);
  }
  const problems: string[] = [];
  for (const { what, port, variable } of planned) {
    if (await isPortBusy(port, DEV_HOST)) {
      problems.push(
        `Port ${port} (${what}) is already in use on ${DEV_HOST}. Stop what holds it, or set ${variable}.`,
      );
    }
  }
  if (problems.length > 0) {
    problems.push(
      '(Is another `npm run dev`, a `temporal server start-dev` or `docker compose up` running?)',
    );
  }
  return problems;
}
