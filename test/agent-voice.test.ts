import { afterEach, describe, expect, it } from 'vitest';
import type { AgentEvent } from '../src/agent/agent-options.js';
import { ConfigError, HangupError } from '../src/errors.js';
import { decodeMulaw, encodeMulaw } from '../src/media/g711.js';
import {
  type AgentHarness,
  callAgent,
  startAgentHarness,
  tonePcm,
  toneUlaw,
  toolOutput,
} from './support/agent-harness.js';
import type { FakeRealtimeConnection } from './support/fake-realtime.js';
import { resourceCounts } from './support/resource-counts.js';
import { deferred, nextServerEvent } from './support/voice-harness.js';

let h: AgentHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const INSTRUCTIONS = 'You are a test agent.';

/** The events of one type an agent emitted so far. */
function eventsOf<T extends AgentEvent['type']>(
  events: AgentEvent[],
  type: T,
): Extract<AgentEvent, { type: T }>[] {
  return events.filter((e): e is Extract<AgentEvent, { type: T }> => e.type === type);
}

describe('connectOpenAIAgent over the call’s RTP leg', () => {
  it('configures a GA session with pcmu both ways and plays the greeting to the phone', async () => {
    h = await startAgentHarness();
    const call = await callAgent(h, { instructions: INSTRUCTIONS, greeting: 'Welcome!', voice: 'marin' });
    const conn = await h.fake.nextConnection();
    expect(conn.request.model).toBe('gpt-realtime');
    const update = await conn.waitFor('session.update');
    const session = update.session as {
      type: string;
      output_modalities: string[];
      audio: { input: { format: { type: string } }; output: { format: { type: string }; voice: string } };
      tools: { name: string }[];
    };
    expect(session.type).toBe('realtime');
    expect(session.output_modalities).toEqual(['audio']);
    expect(session.audio.input.format.type).toBe('audio/pcmu');
    expect(session.audio.output.format.type).toBe('audio/pcmu');
    expect(session.audio.output.voice).toBe('marin');
    expect(session.tools.map((t) => t.name)).toEqual(['end_call']);

    const create = await conn.waitFor('response.create');
    expect(JSON.stringify(create.response?.instructions)).toContain('Welcome!');
    const greeting = toneUlaw(600);
    const response = conn.startResponse({ request: create });
    await response.audio(greeting, { chunkBytes: 800 });
    response.transcript('Welcome!');
    response.done();
    await call.phone.waitForAudio(600);
    // What the phone heard is the model's audio, sample for sample.
    expect(call.phone.heard().audio.subarray(0, greeting.length)).toEqual(decodeMulaw(greeting));
    await call.phone.hangup();
    const result = await call.result;
    expect(result.reason).toBe('caller-hangup');
    expect(result.transcript).toEqual([expect.objectContaining({ role: 'assistant', text: 'Welcome!' })]);
    expect(result.durations.agentSpeechMs).toBe(600);
  });

  it('sends what the phone says to the model as pcmu, byte for byte', async () => {
    h = await startAgentHarness();
    const call = await callAgent(h, { instructions: INSTRUCTIONS });
    const conn = await h.fake.nextConnection();
    await call.event('connected');
    const speech = tonePcm(400);
    await call.phone.speak(speech);
    const heard = await conn.waitForAudio(speech.length);
    expect(heard.includes(encodeMulaw(speech))).toBe(true);
    await call.phone.hangup();
    expect((await call.result).reason).toBe('caller-hangup');
  });

  it('barge-in: stops within a frame, cancels the response and truncates at what was sent', async () => {
    h = await startAgentHarness();
    const call = await callAgent(h, { instructions: INSTRUCTIONS, greeting: true, minBargeInMs: 0 });
    const conn = await h.fake.nextConnection();
    const response = conn.startResponse({ request: await conn.waitFor('response.create') });
    // 4 s of answer arrive at once (faster than real time, as the real model sends it).
    await response.audio(toneUlaw(4000), { chunkBytes: 1600 });
    await call.phone.waitForAudio(500);
    const heardAtSpeech = call.phone.heardMs;
    conn.speechStarted();
    const truncate = await conn.waitFor('conversation.item.truncate');
    const cancel = await conn.waitFor('response.cancel');
    expect(cancel.type).toBe('response.cancel');
    expect(truncate.item_id).toBe(response.messageItemId);
    // At most the frame on the wire and the one of the current tick went out after speech_started.
    expect(truncate.audio_end_ms).toBeGreaterThanOrEqual(heardAtSpeech);
    expect(truncate.audio_end_ms - heardAtSpeech).toBeLessThanOrEqual(40);
    const bargeIn = await call.event('bargeIn');
    expect(bargeIn.heardMs).toBe(truncate.audio_end_ms);
    // Proving an absence: no frame of the stopped answer reaches the phone afterwards.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(call.phone.heardMs).toBe(truncate.audio_end_ms);
    await call.phone.hangup();
    const result = await call.result;
    expect(result.durations.bargeIns).toBe(1);
    expect(result.durations.agentSpeechMs).toBe(truncate.audio_end_ms);
  });

  it('ignores a speech_started that the caller’s audio does not confirm (minBargeInMs)', async () => {
    h = await startAgentHarness();
    const call = await callAgent(h, { instructions: INSTRUCTIONS, greeting: true, minBargeInMs: 200 });
    const conn = await h.fake.nextConnection();
    const response = conn.startResponse({ request: await conn.waitFor('response.create') });
    await response.audio(toneUlaw(1500));
    await call.phone.waitForAudio(200);
    conn.speechStarted(); // echo or noise: the phone sends nothing loud
    conn.speechStopped();
    response.done();
    await call.phone.waitForAudio(1500);
    expect(
      conn.received.some((e) => e.type === 'response.cancel' || e.type === 'conversation.item.truncate'),
    ).toBe(false);
    await call.phone.hangup();
    const result = await call.result;
    expect(result.durations).toMatchObject({ bargeIns: 0, falseBargeIns: 1, agentSpeechMs: 1500 });
  });

  it('a confirmed barge-in: the caller really talks for minBargeInMs', async () => {
    h = await startAgentHarness();
    const call = await callAgent(h, { instructions: INSTRUCTIONS, greeting: true, minBargeInMs: 100 });
    const conn = await h.fake.nextConnection();
    const response = conn.startResponse({ request: await conn.waitFor('response.create') });
    await response.audio(toneUlaw(3000));
    await call.phone.waitForAudio(200);
    const talking = call.phone.speak(tonePcm(600));
    conn.speechStarted();
    const truncate = await conn.waitFor('conversation.item.truncate');
    expect(truncate.audio_end_ms).toBeGreaterThan(200);
    await talking;
    await call.phone.hangup();
    expect((await call.result).durations.bargeIns).toBe(1);
  });

  it('runs a tool and sends its output back, then asks for the next response', async () => {
    h = await startAgentHarness();
    const seen = deferred<{ args: Record<string, unknown>; remote: string }>();
    const call = await callAgent(h, {
      instructions: INSTRUCTIONS,
      tools: [
        {
          name: 'look_up_order',
          description: 'Order status',
          parameters: { type: 'object', properties: { order: { type: 'string' } }, required: ['order'] },
          handler: async (args, ctx) => {
            seen.resolve({ args, remote: ctx.remoteNumber });
            return { status: 'shipped' };
          },
        },
        {
          name: 'broken',
          description: 'Always fails',
          handler: () => {
            throw new Error('database down');
          },
        },
      ],
    });
    const conn = await h.fake.nextConnection();
    await call.event('connected');
    const response = conn.startResponse();
    response.functionCall('look_up_order', { order: '1234' }, 'call_A');
    response.functionCall('broken', {}, 'call_B');
    response.done();
    expect(await toolOutput(conn, 'call_A')).toEqual({ status: 'shipped' });
    expect(await toolOutput(conn, 'call_B')).toEqual({ error: 'The tool failed: database down' });
    await conn.waitFor('response.create');
    expect(await seen.promise).toEqual({ args: { order: '1234' }, remote: 'alice' });
    await call.phone.hangup();
    const result = await call.result;
    expect(result.toolCalls.map((c) => [c.name, c.error])).toEqual([
      ['look_up_order', undefined],
      ['broken', 'The tool failed: database down'],
    ]);
    expect(eventsOf(call.events, 'toolCall')).toHaveLength(2);
  });

  it('a slow tool answers the model with an error after its time limit', async () => {
    h = await startAgentHarness();
    const aborted = deferred<boolean>();
    const call = await callAgent(h, {
      instructions: INSTRUCTIONS,
      toolTimeoutMs: 50,
      tools: [
        {
          name: 'slow',
          description: 'Never answers',
          handler: (_args, ctx) =>
            new Promise(() => {
              ctx.signal.addEventListener('abort', () => aborted.resolve(true));
            }),
        },
      ],
    });
    const conn = await h.fake.nextConnection();
    await call.event('connected');
    const response = conn.startResponse();
    response.functionCall('slow', {}, 'call_S');
    response.done();
    expect(await toolOutput(conn, 'call_S')).toEqual({ error: 'The tool did not answer within 50 ms' });
    expect(await aborted.promise).toBe(true);
    await call.phone.hangup();
    await call.result;
  });

  it('end_call: the goodbye is said, then the call is hung up', async () => {
    h = await startAgentHarness();
    const call = await callAgent(h, { instructions: INSTRUCTIONS, endCall: { goodbye: 'Bye now.' } });
    const conn = await h.fake.nextConnection();
    await call.event('connected');
    const first = conn.startResponse();
    await first.audio(toneUlaw(300));
    first.functionCall('end_call', {}, 'call_E');
    first.done();
    const goodbyeRequest = await conn.waitFor('response.create');
    expect(JSON.stringify(goodbyeRequest.response?.instructions)).toContain('Bye now.');
    const goodbye = conn.startResponse({ request: goodbyeRequest });
    await goodbye.audio(toneUlaw(400, 600));
    goodbye.done();
    expect((await call.phone.ended()).cause).toBe(16);
    const result = await call.result;
    expect(result.reason).toBe('end-call');
    // Reported to the call's listeners before the hang-up took them away.
    expect(eventsOf(call.events, 'ended')).toEqual([{ type: 'ended', reason: 'end-call' }]);
    // Both answers were heard in full before the hangup.
    expect(call.phone.heardMs).toBe(700);
  });

  it('transfer_call refuses a destination outside transferTargets, and transfers to a listed one', async () => {
    h = await startAgentHarness();
    h.sim.addExtension('operators', 'sales', 1, 'Answer');
    h.sim.addExtension('operators', 'sales', 2, 'Stasis', 'sales-desk,call');
    const call = await callAgent(h, {
      instructions: INSTRUCTIONS,
      transferTargets: { sales: { context: 'operators', extension: 'sales' } },
    });
    const conn = await h.fake.nextConnection();
    const update = await conn.waitFor('session.update');
    const transferTool = (update.session as { tools: { name: string; parameters: unknown }[] }).tools.find(
      (t) => t.name === 'transfer_call',
    );
    expect(transferTool?.parameters).toMatchObject({ properties: { destination: { enum: ['sales'] } } });
    const talkedInto = conn.startResponse();
    talkedInto.functionCall('transfer_call', { destination: 'PJSIP/+1900555666' }, 'call_X');
    talkedInto.done();
    expect(((await toolOutput(conn, 'call_X')) as { error: string }).error).toMatch(/Unknown destination/);
    const next = conn.startResponse({ request: await conn.waitFor('response.create') });
    next.functionCall('transfer_call', { destination: 'sales' }, 'call_Y');
    next.done();
    const result = await call.result;
    expect(result).toMatchObject({ reason: 'transfer', transferTarget: 'sales' });
    expect(result.error).toBeUndefined();
    const ui = await call.ui;
    expect(await ui.ended).toBe('transferred');
    expect(result.toolCalls.map((c) => c.error === undefined)).toEqual([false, true]);
  });

  it('the model dropping the connection mid-turn ends with model-error and the handler goes on', async () => {
    h = await startAgentHarness();
    const fallback = deferred<void>();
    const call = await callAgent(h, { instructions: INSTRUCTIONS, greeting: true }, async (ui, result) => {
      if (result.reason === 'model-error') await ui.say('Sorry, let me transfer you.');
      fallback.resolve();
    });
    const conn = await h.fake.nextConnection();
    const response = conn.startResponse({ request: await conn.waitFor('response.create') });
    await response.audio(toneUlaw(2000));
    await call.phone.waitForAudio(100);
    conn.drop();
    const result = await call.result;
    expect(result.reason).toBe('model-error');
    expect(result.error?.message).toMatch(/closed/);
    await fallback.promise;
    expect(h.tts.said).toEqual(['Sorry, let me transfer you.']);
    expect(eventsOf(call.events, 'error')[0]?.fatal).toBe(true);
  });

  it('a refused model connection ends with model-error before any audio', async () => {
    h = await startAgentHarness();
    h.fake.refuseNext(500);
    const call = await callAgent(h, { instructions: INSTRUCTIONS });
    const result = await call.result;
    expect(result.reason).toBe('model-error');
    expect(result.error?.name).toBe('RealtimeConnectionError');
    await call.phone.hangup();
  });

  it('signal: aborting ends the session with reason aborted; the handler keeps the call', async () => {
    h = await startAgentHarness();
    const controller = new AbortController();
    const call = await callAgent(h, { instructions: INSTRUCTIONS, signal: controller.signal }, async (ui) =>
      ui.say('Back to the menu.'),
    );
    const conn = await h.fake.nextConnection();
    await call.event('connected');
    controller.abort();
    expect((await call.result).reason).toBe('aborted');
    await conn.closed;
    expect((await call.phone.ended()).cause).toBe(16);
    expect(h.tts.said).toEqual(['Back to the menu.']);
  });

  it('reports transcripts, turn latency and token usage', async () => {
    h = await startAgentHarness();
    const call = await callAgent(h, { instructions: INSTRUCTIONS });
    const conn = await h.fake.nextConnection();
    await call.event('connected');
    await call.phone.speak(tonePcm(200));
    conn.speechStarted();
    conn.speechStopped();
    conn.userTranscript('Where is my order?');
    const response = conn.startResponse();
    await response.audio(toneUlaw(200));
    response.transcript('It shipped today.');
    response.done('completed', {
      total_tokens: 30,
      input_tokens: 20,
      output_tokens: 10,
      input_token_details: { audio_tokens: 15, text_tokens: 5 },
      output_token_details: { audio_tokens: 8, text_tokens: 2 },
    });
    await call.phone.waitForAudio(200);
    const latency = await call.event('turnLatency');
    expect(latency.ms).toBeGreaterThanOrEqual(0);
    await waitUntil(() =>
      call.events.some((e) => e.type === 'transcript' && e.role === 'assistant' && e.final),
    );
    await call.phone.hangup();
    const result = await call.result;
    expect(result.transcript.map((t) => [t.role, t.text])).toEqual([
      ['user', 'Where is my order?'],
      ['assistant', 'It shipped today.'],
    ]);
    expect(result.usage).toMatchObject({
      responses: 1,
      totalTokens: 30,
      inputTokens: 20,
      outputTokens: 10,
      inputAudioTokens: 15,
      outputAudioTokens: 8,
    });
    const partials = eventsOf(call.events, 'transcript').filter((e) => e.role === 'assistant' && !e.final);
    expect(partials.at(-1)?.text).toBe('It shipped today.');
  });

  it('no API key: ConfigError before the call is touched', async () => {
    h = await startAgentHarness();
    const error = deferred<unknown>();
    await h.server.registerExtension('3001', {
      voice: async (ui) => {
        try {
          await ui.connectOpenAIAgent({ instructions: INSTRUCTIONS });
        } catch (e) {
          error.resolve(e);
        }
      },
    });
    const previous = process.env.OPENAI_API_KEY;
    delete process.env.OPENAI_API_KEY;
    try {
      const phone = await h.sim.call({ from: 'alice', to: '3001' });
      const thrown = await error.promise;
      expect(thrown).toBeInstanceOf(ConfigError);
      expect((thrown as ConfigError).message).toMatch(/OPENAI_API_KEY/);
      expect(phone.answered).toBe(false);
      expect(h.fake.attempts).toHaveLength(0);
    } finally {
      if (previous !== undefined) process.env.OPENAI_API_KEY = previous;
    }
  });

  it('the caller hanging up closes the model socket at once', async () => {
    h = await startAgentHarness();
    const call = await callAgent(h, { instructions: INSTRUCTIONS });
    const conn = await h.fake.nextConnection();
    await conn.waitFor('session.update');
    await call.phone.hangup();
    expect((await call.result).reason).toBe('caller-hangup');
    await conn.closed;
    await h.fake.idle();
    expect(h.fake.openSockets).toBe(0);
    const ui = await call.ui;
    await expect(ui.say('too late')).rejects.toBeInstanceOf(HangupError);
  });
});

describe('activation modes', () => {
  it('talk-detect: nothing reaches the model until the caller talks; then the pre-roll and speech are flushed', async () => {
    h = await startAgentHarness();
    const call = await callAgent(h, { instructions: INSTRUCTIONS, activation: 'talk-detect' });
    const conn = await h.fake.nextConnection();
    await call.event('connected');
    const ui = await call.ui;
    const channel = h.sim.pbx.channels.get(ui.channelId);
    await waitUntil(() => channel?.talkDetect !== undefined);
    await call.phone.speak(new Int16Array(8 * 300)); // 300 ms of silence: not talking
    expect(conn.audio.length).toBe(0);
    const speech = tonePcm(400);
    await call.phone.speak(speech);
    const heard = await conn.waitForAudio(speech.length);
    expect(heard.includes(encodeMulaw(speech).subarray(0, 1600))).toBe(true);
    // The model's VAD has taken over: TALK_DETECT is removed from the channel.
    await waitUntil(() => channel?.talkDetect === undefined);
    await call.phone.hangup();
    await call.result;
  });

  it('talk-detect while the model is still starting: speech is buffered from talk start and flushed when it is ready', async () => {
    h = await startAgentHarness();
    h.fake.holdSessionUpdates = true;
    const call = await callAgent(h, { instructions: INSTRUCTIONS, activation: 'talk-detect' });
    const conn = await h.fake.nextConnection();
    await conn.waitFor('session.update');
    const ui = await call.ui;
    const channel = h.sim.pbx.channels.get(ui.channelId);
    await waitUntil(() => channel?.talkDetect !== undefined);
    const speech = tonePcm(600);
    await call.phone.speak(speech);
    // The model is not ready: nothing may have been sent yet.
    expect(conn.audio.length).toBe(0);
    conn.releaseSessionUpdates();
    const heard = await conn.waitForAudio(speech.length);
    // Flushed in order: the whole utterance, byte for byte.
    expect(heard.includes(encodeMulaw(speech))).toBe(true);
    await call.phone.hangup();
    await call.result;
  });

  it('immediate: audio that arrives while the model connects is kept and sent first, in order', async () => {
    h = await startAgentHarness();
    h.fake.holdSessionUpdates = true;
    const call = await callAgent(h, { instructions: INSTRUCTIONS });
    const conn = await h.fake.nextConnection();
    await conn.waitFor('session.update');
    const ui = await call.ui;
    // The media path is up once the caller shares a bridge with the externalMedia leg.
    await waitUntil(() =>
      [...h!.sim.pbx.bridges.values()].some(
        (b) => b.channels.includes(ui.channelId) && b.channels.length === 2,
      ),
    );
    const early = tonePcm(300, 500);
    await call.phone.speak(early);
    expect(conn.audio.length).toBe(0);
    conn.releaseSessionUpdates();
    await call.event('connected');
    const late = tonePcm(300, 350);
    await call.phone.speak(late);
    const heard = await conn.waitForAudio(early.length + late.length);
    expect(heard.indexOf(encodeMulaw(early))).toBeGreaterThanOrEqual(0);
    expect(heard.indexOf(encodeMulaw(late))).toBeGreaterThan(heard.indexOf(encodeMulaw(early)));
    await call.phone.hangup();
    await call.result;
  });

  it('delay: caller audio is dropped for delayMs, then streams', async () => {
    h = await startAgentHarness();
    const call = await callAgent(h, { instructions: INSTRUCTIONS, activation: { delayMs: 300 } });
    const conn = await h.fake.nextConnection();
    await call.event('connected');
    await call.phone.speak(tonePcm(100, 500));
    expect(conn.audio.length).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 300)); // the delay under test
    const speech = tonePcm(200, 350);
    await call.phone.speak(speech);
    const heard = await conn.waitForAudio(speech.length);
    expect(heard.includes(encodeMulaw(speech))).toBe(true);
    expect(heard.includes(encodeMulaw(tonePcm(100, 500)).subarray(0, 160))).toBe(false);
    await call.phone.hangup();
    await call.result;
  });
});

describe('dtmf modes', () => {
  it('forward: a key group goes to the model as a user message, then a response is asked for', async () => {
    h = await startAgentHarness();
    const call = await callAgent(h, { instructions: INSTRUCTIONS });
    const conn = await h.fake.nextConnection();
    await call.event('connected');
    await call.phone.press('42#');
    const item = await conn.waitFor('conversation.item.create', (e) => e.item.type === 'message');
    expect(JSON.stringify(item.item)).toContain('4 2 #');
    await conn.waitFor('response.create');
    await call.phone.hangup();
    await call.result;
  });

  it('ignore: keys reach ui.on("dtmf") only', async () => {
    h = await startAgentHarness();
    const keys: string[] = [];
    const call = await callAgent(h, { instructions: INSTRUCTIONS, dtmf: 'ignore' });
    const conn = await h.fake.nextConnection();
    await call.event('connected');
    const ui = await call.ui;
    const pressed = deferred<void>();
    ui.on('dtmf', (digit) => {
      keys.push(digit);
      if (keys.length === 3) pressed.resolve();
    });
    await call.phone.press('12#');
    await pressed.promise;
    await new Promise((resolve) => setTimeout(resolve, 1100)); // longer than a key group: proving an absence
    expect(conn.received.filter((e) => e.type === 'conversation.item.create')).toHaveLength(0);
    await call.phone.hangup();
    await call.result;
  });

  it('a callback returning "end" ends the session with reason dtmf; the handler keeps the call', async () => {
    h = await startAgentHarness();
    const seen: string[] = [];
    const call = await callAgent(
      h,
      {
        instructions: INSTRUCTIONS,
        dtmf: (digit) => {
          seen.push(digit);
          return digit === '0' ? 'end' : undefined;
        },
      },
      async (ui) => ui.say('Connecting you to a human.'),
    );
    const conn = await h.fake.nextConnection();
    await call.event('connected');
    await call.phone.press('50');
    const result = await call.result;
    expect(result).toMatchObject({ reason: 'dtmf', digit: '0' });
    expect(seen).toEqual(['5', '0']);
    await conn.closed;
    expect((await call.phone.ended()).cause).toBe(16);
    expect(h.tts.said).toEqual(['Connecting you to a human.']);
  });
});

describe('leaks', () => {
  it('200 agent calls hung up at random moments leave nothing behind', async () => {
    h = await startAgentHarness();
    const harness = h;
    await harness.server.registerExtension('3000', {
      voice: async (ui) => {
        // The channel id in the instructions pairs each model connection with its phone.
        await ui.connectOpenAIAgent({
          instructions: `agent of ${ui.channelId}`,
          greeting: true,
          connection: harness.connection,
        });
      },
    });
    const connectionOf = async (channelId: string): Promise<FakeRealtimeConnection> => {
      let found: FakeRealtimeConnection | undefined;
      await waitUntil(() => {
        found = harness.fake.connections.find((c) => c.session.instructions === `agent of ${channelId}`);
        return found !== undefined;
      });
      return found!;
    };
    const baseline = resourceCounts();
    let stage = 0;
    for (let batch = 0; batch < 10; batch++) {
      await Promise.all(
        Array.from({ length: 20 }, async () => {
          const moment = stage++ % 4;
          const phone = await harness.sim.call({ from: 'alice', to: '3000' });
          if (moment === 0) return phone.hangup(); // while the agent starts
          const conn = await connectionOf(phone.channelId);
          const create = await conn.waitFor('response.create');
          if (moment === 1) return phone.hangup(); // while the greeting is being asked for
          const response = conn.startResponse({ request: create });
          await response.audio(toneUlaw(2000), { chunkBytes: 1600 });
          if (moment === 2) return phone.hangup(); // while the agent speaks
          await phone.waitForAudio(60);
          response.functionCall('end_call', {}, 'call_end');
          response.done();
          await phone.ended(); // the agent hangs up
        }),
      );
      while (harness.server.activeCalls > 0) await nextServerEvent(harness.server, 'callEnded');
    }
    await harness.fake.idle({ timeoutMs: 10_000 });
    expect(harness.fake.openSockets).toBe(0);
    expect(harness.sim.pbx.channels.size).toBe(0);
    expect(harness.sim.pbx.bridges.size).toBe(0);
    const after = resourceCounts();
    const shown = JSON.stringify({ baseline, after });
    expect(after.UDPWrap ?? 0, shown).toBe(baseline.UDPWrap ?? 0);
    expect(after.Timeout ?? 0, shown).toBeLessThanOrEqual(baseline.Timeout ?? 0);
  }, 120_000);
});

/** Polls a condition the simulator exposes no event for (channel state). */
async function waitUntil(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
