import { HangupError, InvalidInputError } from '../errors.js';
import type { Logger } from '../logger.js';
import { publishAudioLatency } from './agent-diagnostics.js';
import type { AgentEvent, AgentOptions, AgentResult } from './agent-options.js';
import { AgentRecord } from './agent-record.js';
import type { AgentSettings } from './agent-settings.js';
import { buildToolSet, type ToolControl } from './agent-tools.js';
import { AgentTurns } from './agent-turns.js';
import type { RealtimeEvent } from './realtime-transport.js';
import { asConnectionError, SessionLifecycle } from './session-lifecycle.js';
import { SpeechRun } from './speech-run.js';

/** A µ-law playback of the call's media path (one per assistant item). */
export interface AgentPlayback {
  write(ulaw: Uint8Array): boolean;
  end(): void;
  readonly done: Promise<'finished' | 'stopped'>;
  /** Samples of this playback sent on the wire so far. */
  readonly sentSamples: number;
}

/** The call's RTP leg as the agent uses it: µ-law in, µ-law out, no codec on the way. */
export interface AgentMedia {
  onPayload(listener: (ulaw: Uint8Array, arrivedAt: number) => void): () => void;
  streamUlaw(): AgentPlayback;
  /** Stops every playback; no frame of them is sent after this call. Resolves at the next tick. */
  stop(): Promise<void>;
  /** Reports each playback's first packet on the wire. */
  onFirstPacket(listener: (info: { requestedAt: number; sentAt: number }) => void): () => void;
}

/** What the voice session needs of the call; the VoiceUI provides it. */
export interface VoiceAgentPort<UI, Target> {
  readonly ui: UI;
  readonly localNumber: string;
  readonly remoteNumber: string;
  /** Aborted when the call ends. */
  readonly signal: AbortSignal;
  readonly logger: Logger;
  /** Answers if needed and opens the call's media path (or returns the open one). */
  openMedia(): Promise<AgentMedia>;
  onDtmf(listener: (digit: string) => void): () => void;
  /** Asterisk TALK_DETECT events of the caller's channel. */
  onTalking(listener: (talking: boolean) => void): () => void;
  setTalkDetect(enabled: boolean): Promise<void>;
  transfer(target: Target): Promise<void>;
  hangup(): Promise<void>;
  emit(event: AgentEvent): void;
}

/** At most this much caller audio waits for the model (4 s of 20 ms frames). */
const MAX_BUFFERED_FRAMES = 200;
/** Audio kept from before TALK_DETECT fired, so the first syllable is not lost. */
const TALK_PRE_ROLL_FRAMES = 15;
/** A forwarded key group ends after this long without a key. */
const DTMF_GROUP_MS = 1000;
/** Longest wait for the agent's last words before ending or transferring. */
const DRAIN_LIMIT_MS = 30_000;

/**
 * Runs a realtime agent on a call until the caller hangs up, the model ends the call or
 * transfers it, a key ends it, `signal` aborts, or the model fails. The call's media path carries
 * µ-law both ways: caller frames go to the model as they arrive, model audio is cut into 20 ms
 * frames and paced by the shared media clock.
 *
 * Barge-in: when the caller talks over the agent (the model's `speech_started`, confirmed by at
 * least `minBargeInMs` of speech on the caller's own audio), the agent's queued audio stops at
 * the next frame, the response in progress is cancelled, and each assistant item is truncated at
 * what was actually sent to the caller, so the model knows what was heard.
 */
export async function runVoiceAgent<UI, Target>(
  port: VoiceAgentPort<UI, Target>,
  options: AgentOptions<UI, Target>,
  settings: AgentSettings,
): Promise<AgentResult> {
  const { transport } = settings;
  const logger = port.logger;
  const endCall = options.endCall ?? true;
  const endCallOptions = typeof endCall === 'object' ? endCall : {};
  const targets = options.transferTargets ?? {};
  const tools = buildToolSet<UI>({
    tools: options.tools ?? [],
    endCall: endCall !== false,
    transferTargets: Object.keys(targets),
    toolTimeoutMs: options.toolTimeoutMs ?? 10_000,
  });
  const activation = options.activation ?? 'immediate';
  if (typeof activation === 'object' && !(Number.isFinite(activation.delayMs) && activation.delayMs >= 0))
    throw new InvalidInputError(`activation.delayMs must be a number of ms ≥ 0, not ${activation.delayMs}`);
  const minBargeInMs = options.minBargeInMs ?? 120;
  const dtmfMode = options.dtmf ?? 'forward';

  const record = new AgentRecord();
  const life = new SessionLifecycle((event) => port.emit(event), logger);
  const { ended } = life;
  const finish = life.finish.bind(life);
  const emit = life.emit.bind(life);
  life.endOn(port.signal, 'caller-hangup');
  life.endOn(options.signal, 'aborted');

  // ---------------------------------------------------------------- the model's audio

  interface Item {
    id: string;
    responseId: string;
    playback: AgentPlayback;
  }
  /** Assistant items being played or queued; an item leaves when its playback settles. */
  const items = new Map<string, Item>();
  const cancelled = new Set<string>();
  let media: AgentMedia | undefined;
  /** Set when a new item starts on an idle line: its first packet's latency is measured. */
  let firstDeltaAt: number | undefined;
  let speechStoppedAt: number | undefined;
  const speaking = (): boolean => items.size > 0;

  const playAudio = (event: Extract<RealtimeEvent, { type: 'audio' }>): void => {
    if (!media || cancelled.has(event.responseId)) return;
    let item = items.get(event.itemId);
    if (!item) {
      if (!speaking()) firstDeltaAt = event.receivedAt;
      const playback = media.streamUlaw();
      const created: Item = { id: event.itemId, responseId: event.responseId, playback };
      item = created;
      items.set(event.itemId, created);
      void playback.done.then(() => {
        if (items.get(created.id) === created) items.delete(created.id);
        record.durations.agentSpeechMs += playback.sentSamples / 8;
      });
    }
    item.playback.write(event.ulaw);
  };
  const endPlaybacks = (responseId: string): void => {
    for (const item of items.values()) if (item.responseId === responseId) item.playback.end();
  };
  /** Resolves when everything the agent has to say has been sent (bounded). */
  const drained = async (): Promise<void> => {
    const pending = [...items.values()].map((item) => item.playback.done);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(pending),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, DRAIN_LIMIT_MS);
      }),
      ended,
    ]);
    clearTimeout(timer);
  };

  // ---------------------------------------------------------------- barge-in

  const speech = new SpeechRun();
  let pendingBargeInSince: number | undefined;
  const bargeIn = (startedAt: number): void => {
    pendingBargeInSince = undefined;
    if (!media || !speaking()) return;
    // stop() first: from this call on no frame of these playbacks goes out, so sentSamples is final.
    void media.stop();
    let heardItem: string | undefined;
    let heardMs = 0;
    for (const item of items.values()) {
      const ms = item.playback.sentSamples / 8;
      transport.truncate(item.id, ms);
      record.markInterrupted(item.id);
      if (ms > 0 || heardItem === undefined) {
        heardItem = item.id;
        heardMs = ms;
      }
    }
    const active = turns.cancelActive();
    if (active !== undefined) cancelled.add(active);
    record.durations.bargeIns++;
    // From here on no frame of the answer goes out: this is when the caller stops hearing it.
    const reactionMs = performance.now() - startedAt;
    emit({ type: 'bargeIn', itemId: heardItem, heardMs, reactionMs });
  };
  const onSpeechStarted = (): void => {
    const now = performance.now();
    if (!speaking()) return;
    if (minBargeInMs <= 0 || speech.lengthAt(now) >= minBargeInMs) bargeIn(now);
    else pendingBargeInSince = now;
  };

  // ---------------------------------------------------------------- turns and tools

  const turns = new AgentTurns<UI>({
    transport,
    tools,
    toolContext: { ui: port.ui, localNumber: port.localNumber, remoteNumber: port.remoteNumber },
    record,
    signal: life.signal,
    logger,
    hooks: {
      emit,
      onControl: (control) => void takeControl(control),
    },
  });

  const takeControl = async (control: ToolControl): Promise<void> => {
    if (control.kind === 'end-call' && endCallOptions.goodbye) {
      const goodbye = endCallOptions.goodbye;
      turns.whenIdle(() => turns.createResponse(`Say exactly this and nothing else: "${goodbye}"`));
      // Wait for that response to start and finish playing.
      await new Promise<void>((resolve) => {
        const off = transport.onEvent((event) => {
          if (event.type === 'responseDone' || event.type === 'closed') {
            off();
            resolve();
          }
        });
        life.onEnd(off);
        life.signal.addEventListener('abort', () => resolve(), { once: true });
      });
    }
    await drained();
    if (control.kind === 'end-call') finish('end-call');
    else finish('transfer', { transferTarget: control.target });
  };

  transport.onEvent((event) => {
    if (life.outcome) return;
    switch (event.type) {
      case 'audio':
        playAudio(event);
        return;
      case 'speechStarted':
        onSpeechStarted();
        return;
      case 'speechStopped':
        speechStoppedAt = performance.now();
        if (pendingBargeInSince !== undefined) {
          pendingBargeInSince = undefined;
          record.durations.falseBargeIns++;
        }
        return;
      case 'responseDone':
        endPlaybacks(event.responseId);
        cancelled.delete(event.responseId);
        break;
      case 'closed':
        emit({ type: 'error', error: event.error, fatal: true });
        finish('model-error', { error: event.error });
        return;
      default:
        break;
    }
    turns.handle(event);
  });
  life.onEnd(() => transport.close());

  // ---------------------------------------------------------------- caller audio in

  let modelReady = false;
  let talking = activation !== 'talk-detect';
  let openAt = Number.POSITIVE_INFINITY;
  const buffered: Uint8Array[] = [];
  const keep = (ulaw: Uint8Array, limit: number): void => {
    buffered.push(ulaw);
    if (buffered.length > limit) buffered.shift();
  };
  const onCallerFrame = (ulaw: Uint8Array, arrivedAt: number): void => {
    if (life.outcome) return;
    if (minBargeInMs > 0) {
      const run = speech.push(ulaw, arrivedAt);
      if (pendingBargeInSince !== undefined && run >= minBargeInMs) bargeIn(pendingBargeInSince);
    }
    if (typeof activation === 'object' && arrivedAt < openAt) return;
    if (!talking) {
      keep(ulaw, TALK_PRE_ROLL_FRAMES);
      return;
    }
    if (!modelReady) {
      keep(ulaw, MAX_BUFFERED_FRAMES);
      return;
    }
    transport.appendAudio(ulaw, arrivedAt);
  };
  const flush = (): void => {
    for (const frame of buffered.splice(0)) transport.appendAudio(frame);
  };

  // ---------------------------------------------------------------- keys

  let digits = '';
  let dtmfTimer: NodeJS.Timeout | undefined;
  const forwardDigits = (): void => {
    if (dtmfTimer) clearTimeout(dtmfTimer);
    dtmfTimer = undefined;
    const group = digits;
    digits = '';
    if (!group) return;
    bargeIn(performance.now());
    turns.whenIdle(() => {
      transport.addUserText(
        `(The caller pressed these keys on the phone keypad: ${group.split('').join(' ')})`,
      );
      turns.createResponse();
    });
  };
  const onDigit = (digit: string): void => {
    if (life.outcome) return;
    if (dtmfMode === 'ignore') return;
    if (typeof dtmfMode === 'function') {
      let verdict: unknown;
      try {
        verdict = dtmfMode(digit);
      } catch (error) {
        logger.error({ err: String(error) }, 'The dtmf callback threw');
      }
      if (verdict === 'end') finish('dtmf', { digit });
      return;
    }
    digits += digit;
    if (dtmfTimer) clearTimeout(dtmfTimer);
    if (digit === '#') forwardDigits();
    else dtmfTimer = setTimeout(forwardDigits, DTMF_GROUP_MS);
  };
  life.onEnd(() => dtmfTimer && clearTimeout(dtmfTimer));

  // ---------------------------------------------------------------- start

  const connectStartedAt = performance.now();
  const connected = life
    .connect(
      transport,
      {
        model: settings.model,
        instructions: options.instructions,
        modality: 'audio',
        voice: settings.voice,
        tools: tools.schemas,
        turnDetection: options.turnDetection ?? 'server_vad',
        ...(options.inputTranscription === false
          ? {}
          : { inputTranscription: options.inputTranscription ?? 'gpt-4o-mini-transcribe' }),
      },
      options.connectTimeoutMs ?? 10_000,
    )
    .then(
      () => true,
      (error: unknown) => {
        if (!life.outcome) life.fail(asConnectionError(error));
        return false;
      },
    );

  // Keys count from the start: a caller may type before the media path and the model are up.
  life.onEnd(port.onDtmf(onDigit));
  try {
    // The model connects while the media path opens; caller audio waits in the buffer meanwhile.
    media = await Promise.race([port.openMedia(), ended.then(() => undefined)]);
    if (media && !life.outcome) {
      const m = media;
      life.onEnd(m.onPayload(onCallerFrame));
      life.onEnd(
        m.onFirstPacket((info) => {
          if (firstDeltaAt !== undefined) {
            publishAudioLatency('out', info.sentAt - firstDeltaAt);
            firstDeltaAt = undefined;
          }
          if (speechStoppedAt !== undefined) {
            emit({ type: 'turnLatency', ms: info.sentAt - speechStoppedAt });
            speechStoppedAt = undefined;
          }
        }),
      );
      if (activation === 'talk-detect') {
        life.onEnd(
          port.onTalking((isTalking) => {
            if (!isTalking || talking || life.outcome) return;
            talking = true;
            // The caller talks over the greeting: stop it now; the model's VAD will follow.
            bargeIn(performance.now());
            if (modelReady) {
              flush();
              void port.setTalkDetect(false).catch(() => {});
            }
          }),
        );
        await port.setTalkDetect(true);
      }
      if ((await connected) && !life.outcome) {
        modelReady = true;
        record.durations.connectMs = performance.now() - connectStartedAt;
        emit({ type: 'connected', ms: record.durations.connectMs });
        openAt = typeof activation === 'object' ? performance.now() + activation.delayMs : 0;
        if (talking) {
          flush();
          if (activation === 'talk-detect') void port.setTalkDetect(false).catch(() => {});
        }
        const greeting = greetingInstructions(options);
        if (greeting) turns.whenIdle(() => turns.createResponse(greeting));
      }
    }
  } catch (error) {
    if (error instanceof HangupError || port.signal.aborted) {
      finish('caller-hangup');
    } else {
      // The media path could not be opened: the handler gets the error, as from say().
      finish('aborted');
      await close();
      throw error;
    }
  }

  await ended;
  await close();
  const outcome = life.outcome!;
  const result = record.result(outcome.reason, outcome.extra);
  // Before the transfer or hang-up below: the call's listeners go with the call.
  emit({ type: 'ended', reason: result.reason });
  if (result.reason === 'transfer' && result.transferTarget !== undefined) {
    try {
      await port.transfer(targets[result.transferTarget] as Target);
    } catch (error) {
      result.error = error instanceof Error ? error : new Error(String(error));
    }
  } else if (result.reason === 'end-call' && endCallOptions.hangup !== false) {
    await port.hangup();
  }
  return result;

  /** Releases the session; the call and its media path stay for the handler. */
  async function close(): Promise<void> {
    life.close();
    if (media && !port.signal.aborted) await media.stop();
    if (activation === 'talk-detect' && !talking && !port.signal.aborted)
      await port.setTalkDetect(false).catch(() => {});
  }
}

/** The instructions of the greeting response, or undefined for none. */
function greetingInstructions<UI, Target>(options: AgentOptions<UI, Target>): string | undefined {
  // A response's instructions replace the session's: repeat them.
  if (options.greeting === true)
    return `${options.instructions}\n\nThe call has just been answered. Greet the caller briefly and ask how you can help.`;
  if (typeof options.greeting === 'string' && options.greeting.trim() !== '')
    return `${options.instructions}\n\nThe call has just been answered. Start by saying exactly: "${options.greeting}"`;
  return undefined;
}
