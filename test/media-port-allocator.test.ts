import { createSocket, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, ResourceExhaustedError } from '../src/errors.js';
import { type AllocatedPort, PortAllocator } from '../src/media/port-allocator.js';

/** A base below the Linux ephemeral range, random so parallel test files rarely meet. */
const base = 20000 + Math.floor(Math.random() * 10000);
const open: Socket[] = [];

afterEach(() => {
  for (const socket of open.splice(0)) {
    try {
      socket.close();
    } catch {
      // closed by the test
    }
  }
});

async function take(allocator: PortAllocator): Promise<AllocatedPort> {
  const allocated = await allocator.allocate('127.0.0.1');
  open.push(allocated.socket);
  return allocated;
}

function closeSocket(socket: Socket): Promise<void> {
  return new Promise((resolve) => socket.close(() => resolve()));
}

describe('PortAllocator', () => {
  it('hands out distinct bound ports of the range, then throws ResourceExhaustedError', async () => {
    const allocator = new PortAllocator({ min: base, max: base + 2 });
    const ports = [await take(allocator), await take(allocator), await take(allocator)].map((a) => a.port);
    expect(new Set(ports)).toEqual(new Set([base, base + 1, base + 2]));
    expect(allocator.inUse).toBe(3);
    const error = await allocator.allocate('127.0.0.1').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ResourceExhaustedError);
    expect((error as Error).message).toBe(
      `no free RTP port in ${base}-${base + 2}; raise RTP_PORT_MAX or lower MAX_CONCURRENT_CALLS`,
    );
  });

  it('allocates concurrently without handing one port out twice', async () => {
    const allocator = new PortAllocator({ min: base + 10, max: base + 19 });
    const all = await Promise.all(Array.from({ length: 10 }, () => take(allocator)));
    expect(new Set(all.map((a) => a.port)).size).toBe(10);
  });

  it('reuses a port once its socket is closed', async () => {
    const allocator = new PortAllocator({ min: base + 20, max: base + 20 });
    const first = await take(allocator);
    await expect(allocator.allocate('127.0.0.1')).rejects.toBeInstanceOf(ResourceExhaustedError);
    await closeSocket(first.socket);
    expect(allocator.inUse).toBe(0);
    const again = await take(allocator);
    expect(again.port).toBe(base + 20);
  });

  it('skips a port another socket holds', async () => {
    const squatter = createSocket('udp4');
    open.push(squatter);
    await new Promise<void>((resolve) => squatter.bind(base + 30, '127.0.0.1', resolve));
    const allocator = new PortAllocator({ min: base + 30, max: base + 31 });
    const allocated = await take(allocator);
    expect(allocated.port).toBe(base + 31);
    // The squatted port is still not counted as free.
    await expect(allocator.allocate('127.0.0.1')).rejects.toBeInstanceOf(ResourceExhaustedError);
  });

  it('rejects an invalid range and an address that is not local', async () => {
    expect(() => new PortAllocator({ min: 5000, max: 4000 })).toThrow(ConfigError);
    expect(() => new PortAllocator({ min: 0, max: 10 })).toThrow(ConfigError);
    const allocator = new PortAllocator({ min: base + 40, max: base + 41 });
    // TEST-NET-1 (RFC 5737) is never an address of this host.
    await expect(allocator.allocate('192.0.2.1')).rejects.toBeInstanceOf(ConfigError);
    expect(allocator.inUse).toBe(0);
  });
});
