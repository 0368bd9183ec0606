/**
 * Ends the calls of a fleet instance that died. Asterisk keeps a channel in Stasis when its app's
 * websocket goes away (the caller would hear silence until they hang up), so the surviving
 * instances hang up the channels the dead one held, with the other channels of their bridges (its
 * externalMedia legs), and destroy those bridges. Every survivor may do it: a 404 means another
 * one already did.
 */
import type { AriClient } from '../asterisk/ari-client.js';
import { AriNotFoundError } from '../errors.js';
import type { Logger } from '../logger.js';

/**
 * Hangs up the channels of `app` (those it held at the last look, `channelIds`, and those still
 * in its Stasis application now) and everything bridged with them; resolves with the channels hung
 * up.
 */
export async function endOrphanedCalls(
  ari: AriClient,
  app: string,
  channelIds: readonly string[],
  logger: Logger,
): Promise<number> {
  const orphans = new Set(channelIds);
  // Calls it took after the last look: still in Stasis(<app>,…).
  for (const channel of await ari.channels.list()) {
    const data = channel.dialplan?.app_data ?? '';
    if (
      channel.dialplan?.app_name?.toLowerCase() === 'stasis' &&
      (data === app || data.startsWith(`${app},`))
    )
      orphans.add(channel.id);
  }
  if (orphans.size === 0) return 0;
  const bridges = (await ari.bridges.list()).filter((b) => b.channels.some((id) => orphans.has(id)));
  for (const bridge of bridges) for (const id of bridge.channels) orphans.add(id);
  let ended = 0;
  const ignoreGone = (error: unknown) => {
    if (!(error instanceof AriNotFoundError)) throw error;
  };
  for (const id of orphans) {
    try {
      await ari.channels.hangup(id);
      ended++;
    } catch (error) {
      ignoreGone(error);
    }
  }
  for (const bridge of bridges) await ari.bridges.destroy(bridge.id).catch(ignoreGone);
  if (ended > 0)
    logger.warn(
      { channels: ended, bridges: bridges.length },
      'ended the calls of a fleet instance that left',
    );
  return ended;
}
