/**
 * RTP port ranges for tests. Test files run in parallel forks, so each vitest worker slot
 * (VITEST_POOL_ID, unique among the forks running at one time) has a block of ports of its own,
 * and a file takes consecutive ranges from its slot's block: two files running at once never
 * share a port.
 *
 * Why not a range from the process id, as before: two forks whose ids were equal modulo the
 * spread, or a few ranges apart, walked through the same ranges, and a file with many calls in
 * one of them left the other file's calls with no free port (ResourceExhaustedError in a CI run).
 */

/** Ports 36000–59999: six blocks of 4000. */
const FIRST = 36000;
const BLOCK = 4000;
const SLOTS = 6;

let used = 0;

/** The next `size` ports of this fork's block (wrapping round within it). */
export function testPortRange(size: number): { min: number; max: number } {
  const pool = Number(process.env.VITEST_POOL_ID);
  const slot = Number.isInteger(pool) && pool > 0 ? (pool - 1) % SLOTS : 0;
  if (used + size > BLOCK) used = 0;
  const min = FIRST + slot * BLOCK + used;
  used += size;
  return { min, max: min + size - 1 };
}

/** {@link testPortRange} as Server options. */
export function rtpRange(size: number): { rtpPortMin: number; rtpPortMax: number } {
  const { min, max } = testPortRange(size);
  return { rtpPortMin: min, rtpPortMax: max };
}
