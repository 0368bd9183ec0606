import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Simulator } from '../../src/sandbox/simulator.js';

const INSTANCE = fileURLToPath(new URL('./cluster-instance.ts', import.meta.url));

/** One app instance of test/support/cluster-instance.ts, in a process of its own. */
export interface FleetInstance {
  id: string;
  child: ChildProcess;
  /** SIGKILL, resolving once the process is gone. */
  kill(): Promise<void>;
}

/**
 * Starts an instance on `sim` (a Simulator, or the connection options of an Asterisk) and resolves
 * once it serves its number (1000, or ASTERAMISK_TEST_NUMBER in `env`).
 */
export async function startFleetInstance(
  id: string,
  sim: Simulator | Simulator[] | Record<string, unknown>,
  env: Record<string, string> = {},
): Promise<FleetInstance> {
  const connection = Array.isArray(sim)
    ? sim.map((one) => one.connectionOptions())
    : sim instanceof Simulator
      ? sim.connectionOptions()
      : sim;
  const child = spawn(process.execPath, ['--import', 'tsx', INSTANCE, id], {
    env: {
      ...process.env,
      ASTERAMISK_TEST_SIM: JSON.stringify(connection),
      // DEBUG_FLEET=1 prints the instances' warnings and errors (see below).
      ...(process.env.DEBUG_FLEET ? { ASTERAMISK_TEST_LOG: '1' } : {}),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${id} did not start:\n${output}`)), 30_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes(`ready ${id}`)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${id} exited (${code}):\n${output}`));
    });
  });
  if (process.env.DEBUG_FLEET) {
    child.stderr!.on('data', (d: Buffer) => {
      for (const line of String(d).split('\n'))
        if (/"level":[45]0/.test(line)) console.log(id, line.slice(0, 300));
    });
  }
  return {
    id,
    child,
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    },
  };
}
