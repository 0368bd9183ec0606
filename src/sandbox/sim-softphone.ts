import type { Softphone, SoftphoneCall, SoftphoneText } from '../console/softphone.js';
import type { SimPhone } from './sim-phone.js';
import type { Simulator } from './simulator.js';

/** Options of {@link simulatorSoftphone}. */
export interface SimulatorSoftphoneOptions {
  /** The simulator endpoint the browser phone is. Default `alice`. */
  identity?: string;
}

/**
 * The web console's softphone over the simulator: the browser becomes a SIP phone of the sandbox
 * (endpoint `alice` by default), so `asteramisk demo --console` needs no PBX and no SIP client.
 */
export function simulatorSoftphone(sim: Simulator, options: SimulatorSoftphoneOptions = {}): Softphone {
  const identity = options.identity ?? 'alice';
  return {
    identity,
    async dial(to: string): Promise<SoftphoneCall> {
      return callOf(await sim.call({ from: identity, to }));
    },
    async sendText(to: string, body: string): Promise<void> {
      const status = await sim.sendText({ from: identity, to, body });
      if (status !== 202) throw new Error(`The PBX answered ${status}: nobody takes texts to ${to}`);
    },
    onText(listener: (text: SoftphoneText) => void): () => void {
      return sim.onSentText((sent) => {
        if (sent.toUser === identity || sent.endpoint === identity)
          listener({ from: userOf(sent.from), body: sent.body, inCall: sent.inDialog });
      });
    },
  };
}

function callOf(phone: SimPhone): SoftphoneCall {
  return {
    id: phone.channelId,
    get answered() {
      return phone.answered;
    },
    press: (digits) => phone.press(digits, { gapMs: 80 }),
    sendAudio: (ulaw) => phone.sendAudio(ulaw),
    onAudio: (listener) => phone.onAudio(listener),
    onMedia: (listener) => phone.onMedia(listener),
    onAnswered(listener: () => void): () => void {
      let wanted = true;
      void phone.waitForAnswer().then((answered) => {
        if (answered && wanted) listener();
      });
      return () => {
        wanted = false;
      };
    },
    ended: () => phone.ended(),
    hangup: () => phone.hangup(),
  };
}

/** The user part of a SIP address (`"Shop" <sip:1000@pbx>` → `1000`); anything else as it is. */
function userOf(address: string): string {
  return /sips?:([^@;>]+)@/.exec(address)?.[1] ?? address;
}
