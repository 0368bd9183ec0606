/**
 * Several Asterisk nodes served by one Server (or used by one Communicator): the connection options
 * of each node. A node's entry overrides the shared options; `ASTERISK_HOST=host1,host2` makes one
 * node per host with everything else shared.
 */
import { ConfigError } from './errors.js';
import type { RuntimeOptions } from './runtime.js';

/** What may differ from node to node: where it is, its credentials, its TLS. */
export interface AsteriskNodeOptions {
  asteriskHost?: string;
  ariPort?: number;
  ariUser?: string;
  ariPassword?: string;
  ariTls?: boolean;
  amiPort?: number;
  amiUser?: string;
  amiPassword?: string;
  amiTls?: boolean;
  tlsCaFile?: string;
  tlsServerName?: string;
  /** The address this node's Asterisk reaches this process at, when it differs between nodes. */
  asteramiskHost?: string;
}

/**
 * The options of each node: `asterisks` entries over the shared options, else one node per host
 * of a comma-separated ASTERISK_HOST, else the options as they are (one node). Each node gets its
 * own slice of the RTP port range, so their media legs never compete for a port.
 */
export function nodeOptionsOf<T extends RuntimeOptions & { asterisks?: AsteriskNodeOptions[] }>(
  options: T,
  env: NodeJS.ProcessEnv,
): RuntimeOptions[] {
  const { asterisks, ...shared } = options;
  let nodes: AsteriskNodeOptions[] | undefined = asterisks;
  const hosts = options.asteriskHost === undefined ? env.ASTERISK_HOST : undefined;
  if (!nodes && hosts?.includes(',')) {
    nodes = hosts
      .split(',')
      .map((h) => h.trim())
      .filter(Boolean)
      .map((asteriskHost) => ({ asteriskHost }));
  }
  if (!nodes) return [shared];
  if (nodes.length === 0) throw new ConfigError('asterisks', 'asterisks lists no Asterisk node');
  const min = Number(shared.rtpPortMin ?? env.RTP_PORT_MIN ?? 30000);
  const max = Number(shared.rtpPortMax ?? env.RTP_PORT_MAX ?? 31000);
  const slice = Math.floor((max - min + 1) / nodes.length);
  if (slice < 4) {
    throw new ConfigError(
      'rtpPortMin',
      `The RTP port range ${min}-${max} is too small for ${nodes.length} Asterisk nodes`,
    );
  }
  const seen = new Set<string>();
  return nodes.map((node, i) => {
    const merged: RuntimeOptions = {
      ...shared,
      ...node,
      rtpPortMin: min + i * slice,
      rtpPortMax: min + (i + 1) * slice - 1,
    };
    const id = `${merged.asteriskHost ?? env.ASTERISK_HOST}:${merged.ariPort ?? env.ASTERISK_ARI_PORT ?? 8088}`;
    if (seen.has(id)) throw new ConfigError('asterisks', `The Asterisk node ${id} is listed twice`);
    seen.add(id);
    return merged;
  });
}
