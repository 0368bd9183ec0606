/**
 * Where the real-Asterisk tests find the PBX: ASTERISK_HOST (unset: the tests skip), the ARI and
 * AMI users of example-configs (`asteramisk` unless told otherwise), ports, and Asterisk's SIP
 * address for the SIP callers (ASTERISK_SIP, default <host>:5060).
 */
export const host = process.env.ASTERISK_HOST;
export const ariUser = process.env.ASTERISK_ARI_USER ?? 'asteramisk';
export const ariPass = process.env.ASTERISK_ARI_PASS ?? 'asteramisk';
export const amiUser = process.env.ASTERISK_AMI_USER ?? 'asteramisk';
export const amiPass = process.env.ASTERISK_AMI_PASS ?? 'asteramisk';
export const ariPort = Number(process.env.ASTERISK_ARI_PORT ?? 8088);
export const amiPort = Number(process.env.ASTERISK_AMI_PORT ?? 5038);
export const sipProxy = process.env.ASTERISK_SIP ?? `${host ?? '127.0.0.1'}:5060`;

/** Server/Communicator options that reach the real Asterisk, with this host's RTP on loopback. */
export function realConnectionOptions(): {
  asteriskHost: string;
  ariPort: number;
  ariUser: string;
  ariPassword: string;
  amiPort: number;
  amiUser: string;
  amiPassword: string;
  rtpBindAddress: string;
  asteramiskHost: string;
} {
  return {
    asteriskHost: host ?? '127.0.0.1',
    ariPort,
    ariUser,
    ariPassword: ariPass,
    amiPort,
    amiUser,
    amiPassword: amiPass,
    rtpBindAddress: '127.0.0.1',
    asteramiskHost: '127.0.0.1',
  };
}
