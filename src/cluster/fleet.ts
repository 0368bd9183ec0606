/**
 * A fleet: several app instances serving the same numbers on the same Asterisk nodes. Each
 * instance registers its own Stasis app, `<name>.<instanceId>`, so Asterisk tells them apart; the
 * fleet's apps are those starting with `<name>.`.
 */

import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { ConfigError } from '../errors.js';

/** Options of a fleet of instances (`fleet` of the Server options). */
export interface FleetOptions {
  /** The fleet's name, the same on every instance (letters, digits, `_`, `-`). */
  name: string;
  /**
   * This instance's id, unique in the fleet (letters, digits, `_`, `-`). Default: the host name,
   * the process id and a random suffix. With `cluster` (Redis) it is also the instance id there.
   */
  instanceId?: string;
  /** How often the live instances are read from each Asterisk. Default 2000 ms. */
  refreshMs?: number;
}

const NAME = /^[A-Za-z0-9_-]+$/;

/** A fleet member's id when none is given. */
export function defaultInstanceId(): string {
  const host =
    hostname()
      .replace(/[^A-Za-z0-9_-]/g, '')
      .slice(0, 20) || 'app';
  return `${host}-${process.pid}-${randomUUID().slice(0, 6)}`;
}

/** The Stasis app of this member and the prefix of the fleet's apps; ConfigError for bad names. */
export function fleetApp(options: FleetOptions): { app: string; prefix: string; instanceId: string } {
  const instanceId = options.instanceId ?? defaultInstanceId();
  if (!NAME.test(options.name))
    throw new ConfigError(
      'fleet.name',
      `fleet.name may hold letters, digits, _ and - only: ${JSON.stringify(options.name)}`,
    );
  if (!NAME.test(instanceId))
    throw new ConfigError(
      'fleet.instanceId',
      `fleet.instanceId may hold letters, digits, _ and - only: ${JSON.stringify(instanceId)}`,
    );
  return { app: `${options.name}.${instanceId}`, prefix: `${options.name}.`, instanceId };
}
