// Keep test output readable: Temporal's own logs at WARN and above only.
import { DefaultLogger, Runtime } from '@temporalio/worker';

try {
  Runtime.install({ logger: new DefaultLogger(process.env.TEST_LOG_LEVEL === 'DEBUG' ? 'DEBUG' : 'WARN') });
} catch {
  // Already installed in this process (a reused fork): keep the first one.
}
