/**
 * The raw clients, no Server: a phone call with no PBX. Starts the built-in Asterisk simulator, registers
 * extension 1000 over AMI, answers the call over ARI, and plays a scripted caller who listens,
 * presses keys and hangs up. Everything travels over real sockets on 127.0.0.1.
 */
import { AmiClient } from '../src/asterisk/ami-client.js';
import { AriClient } from '../src/asterisk/ari-client.js';
import { Simulator } from '../src/sandbox/simulator.js';

const t0 = performance.now();
const say = (who: string, what: string) =>
  console.log(`${((performance.now() - t0) / 1000).toFixed(2).padStart(6)}s  ${who.padEnd(6)} ${what}`);

const sim = await Simulator.start({ timeScale: 0.5 });
say('sim', `Asterisk 22 simulator: ARI ${sim.ariUrl}, AMI 127.0.0.1:${sim.amiPort}`);

const ami = new AmiClient({
  host: sim.host,
  port: sim.amiPort,
  username: sim.credentials.amiUser,
  password: sim.credentials.amiPassword,
});
await ami.connect();
await ami.action({
  Action: 'DialplanExtensionAdd',
  Context: 'asteramisk-call',
  Extension: '1000',
  Priority: 1,
  Application: 'Stasis',
  ApplicationData: 'demo,call',
});
say('app', 'registered extension 1000 over AMI (DialplanExtensionAdd → Stasis(demo,call))');

const ari = new AriClient({
  url: sim.ariUrl,
  username: sim.credentials.ariUser,
  password: sim.credentials.ariPassword,
  app: 'demo',
});

/** Resolves when the playback finishes. */
function played(playbackId: string): Promise<void> {
  return new Promise((resolve) => {
    const done = (e: { playback: { id: string } }) => {
      if (e.playback.id !== playbackId) return;
      ari.off('PlaybackFinished', done);
      resolve();
    };
    ari.on('PlaybackFinished', done);
  });
}

const finished = new Promise<void>((resolve) => {
  ari.on('StasisStart', async (e) => {
    const id = e.channel.id;
    say(
      'app',
      `call from ${e.channel.caller.name} <${e.channel.caller.number}> to ${e.channel.dialplan.exten} (channel ${id})`,
    );
    const digits: string[] = [];
    let enteredDigits!: (digits: string) => void;
    const entered = new Promise<string>((done) => {
      enteredDigits = done;
    });
    ari.on('ChannelDtmfReceived', (d) => {
      if (d.channel.id !== id) return;
      say('app', `caller pressed ${d.digit}`);
      if (d.digit === '#') enteredDigits(digits.join(''));
      else digits.push(d.digit);
    });
    await ari.channels.answer(id);
    say('app', 'answered');
    const greeting = await ari.channels.play(id, 'sound:hello-world');
    say('app', 'playing sound:hello-world');
    await played(greeting.id);
    const pressed = await entered;
    say('app', `caller entered ${pressed}; reading it back`);
    const readBack = await ari.channels.play(id, `digits:${pressed}`);
    await played(readBack.id);
    await ari.channels.hangup(id);
    say('app', 'hung up');
    resolve();
  });
});
await ari.connect();
say('app', 'ARI events websocket connected as app "demo"');

const phone = await sim.call({ from: 'alice', to: '1000' });
say('phone', 'alice dials 1000');
await phone.waitForMedia('sound:hello-world');
say('phone', 'hears sound:hello-world');
await phone.press('42#', { gapMs: 200 });
const { cause } = await phone.ended();
await finished;
say('phone', `call ended (cause ${cause}); alice heard: ${phone.heard().media.join(', ')}`);

await ari.close();
await ami.close();
await sim.close();
