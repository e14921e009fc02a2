/** A gateway logger that keeps every line, for tests that check what the gateway logged. */
import type { GatewayLogger, LogFields } from '../../src/gateway/server.js';

export interface LoggedLine {
  level: 'info' | 'warn' | 'error';
  message: string;
  fields: LogFields;
}

export class RecordingLogger implements GatewayLogger {
  readonly lines: LoggedLine[] = [];
  info(message: string, fields: LogFields = {}): void {
    this.lines.push({ level: 'info', message, fields });
  }
  warn(message: string, fields: LogFields = {}): void {
    this.lines.push({ level: 'warn', message, fields });
  }
  error(message: string, fields: LogFields = {}): void {
    this.lines.push({ level: 'error', message, fields });
  }
}
