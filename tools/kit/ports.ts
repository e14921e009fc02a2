/** Local TCP ports for the harness: one free to listen on, or whether one is taken. */
import { createConnection, createServer } from 'node:net';
import type { AddressInfo } from 'node:net';

export const LOOPBACK = '127.0.0.1';

/**
 * A port nothing listens on at this moment (the kernel picks it, then it is released). Another
 * process may take it before the caller does: whatever listens on it must cope with that.
 */
export async function freePort(host = LOOPBACK): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** True when something accepts connections on host:port, or the port cannot be bound there. */
export async function isPortBusy(port: number, host = LOOPBACK): Promise<boolean> {
  const accepts = await new Promise<boolean>((done) => {
    const socket = createConnection({ port, host });
    socket.setTimeout(500);
    socket.once('connect', () => {
      socket.destroy();
      done(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      done(false);
    });
    socket.once('error', () => done(false));
  });
  if (accepts) return true;
  return new Promise<boolean>((done) => {
    const server = createServer();
    server.once('error', () => done(true));
    server.listen(port, host, () => server.close(() => done(false)));
  });
}
