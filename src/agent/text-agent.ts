import { HangupError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { AgentEvent, AgentOptions, AgentResult } from './agent-options.js';
import { AgentRecord } from './agent-record.js';
import { buildToolSet } from './agent-tools.js';
import { AgentTurns } from './agent-turns.js';
import type { RealtimeTransport } from './realtime-transport.js';
import { asConnectionError, SessionLifecycle } from './session-lifecycle.js';

/**
 * What the text session needs of a conversation; the TextUI provides it. The text that opened the
 * conversation is `ui.firstMessage` (it is not in the conversation's inbox).
 */
export interface TextAgentPort<UI> {
  readonly ui: UI;
  readonly localNumber: string;
  readonly remoteNumber: string;
  /** Aborted when the conversation ends. */
  readonly signal: AbortSignal;
  readonly logger: Logger;
  /** The peer's next text; undefined when the conversation ended or `signal` aborted (the read is then withdrawn). */
  nextMessage(signal: AbortSignal): Promise<string | undefined>;
  /** Gives texts that were read but not handled back to the conversation, in order, ahead of newer ones. */
  unread(texts: string[]): void;
  /** The text that opened the conversation, while no agent has been given it yet (else undefined). */
  peekOpening(): string | undefined;
  /** Marks the opening text as given to a model: later agents of the conversation do not get it. */
  takeOpening(): void;
  /** Sends one text to the peer. */
  send(text: string): Promise<void>;
  hangup(): Promise<void>;
  emit(event: AgentEvent): void;
}

/**
 * Runs a realtime agent over a text conversation: each text of the peer is a user turn, each
 * answer of the model goes back as a text. Texts that arrive while the model is answering wait,
 * in order, and go to the model together once it is done: none is dropped or reordered, and
 * answers are sent in the order the model gave them.
 */
export async function runTextAgent<UI>(
  port: TextAgentPort<UI>,
  options: AgentOptions<UI, never>,
  settings: { model: string; transport: RealtimeTransport },
): Promise<AgentResult> {
  const { transport } = settings;
  const logger = port.logger;
  const endCall = options.endCall ?? true;
  const endCallOptions = typeof endCall === 'object' ? endCall : {};
  const tools = buildToolSet<UI>({
    tools: options.tools ?? [],
    endCall: endCall !== false,
    transferTargets: [],
    toolTimeoutMs: options.toolTimeoutMs ?? 10_000,
  });
  const record = new AgentRecord();
  const life = new SessionLifecycle((event) => port.emit(event), logger);
  const emit = life.emit.bind(life);
  life.endOn(port.signal, 'caller-hangup');
  life.endOn(options.signal, 'aborted');

  /** Answers go out one after the other, in the model's order. */
  let sending: Promise<void> = Promise.resolve();
  const send = (text: string): void => {
    if (text.trim() === '') return;
    sending = sending
      .then(() => (port.signal.aborted ? undefined : port.send(text)))
      .catch((error: unknown) => {
        if (!(error instanceof HangupError)) {
          logger.warn({ err: String(error) }, 'Sending an agent answer failed');
          emit({
            type: 'error',
            error: error instanceof Error ? error : new Error(String(error)),
            fatal: false,
          });
        }
      });
  };

  const turns = new AgentTurns<UI>({
    transport,
    tools,
    toolContext: { ui: port.ui, localNumber: port.localNumber, remoteNumber: port.remoteNumber },
    record,
    signal: life.signal,
    logger,
    hooks: {
      emit,
      onAssistantText: (_itemId, text) => send(text),
      onControl: () => {
        // end_call is the only control on text.
        if (endCallOptions.goodbye) send(endCallOptions.goodbye);
        void sending.then(() => life.finish('end-call'));
      },
    },
  });
  transport.onEvent((event) => {
    if (life.outcome) return;
    if (event.type === 'closed') life.fail(event.error);
    else turns.handle(event);
  });
  life.onEnd(() => transport.close());

  /**
   * The text that opened the conversation is the model's first user turn, unless an earlier agent
   * of the conversation was given it. Not in the inbox, it never goes back there either.
   */
  let opening = port.peekOpening();
  /** Texts read from the conversation and not yet given to the model. */
  const waiting: string[] = [];
  const give = (text: string): void => {
    transport.addUserText(text);
    record.addLine('user', text, '');
  };
  const handOver = (): void => {
    if (opening === undefined && waiting.length === 0) return;
    if (opening !== undefined) {
      give(opening);
      port.takeOpening();
      opening = undefined;
    }
    for (const text of waiting.splice(0)) give(text);
    turns.createResponse();
  };

  const connectStartedAt = performance.now();
  try {
    await life.connect(
      transport,
      { model: settings.model, instructions: options.instructions, modality: 'text', tools: tools.schemas },
      options.connectTimeoutMs ?? 10_000,
    );
    record.durations.connectMs = performance.now() - connectStartedAt;
    emit({ type: 'connected', ms: record.durations.connectMs });
  } catch (error) {
    if (!life.outcome) life.fail(asConnectionError(error));
  }
  const greeting =
    options.greeting === true
      ? `${options.instructions}\n\nThe conversation has just started. Greet the user briefly and ask how you can help.`
      : typeof options.greeting === 'string' && options.greeting.trim() !== ''
        ? `${options.instructions}\n\nStart the conversation by writing exactly: "${options.greeting}"`
        : undefined;
  if (greeting && !life.outcome) turns.whenIdle(() => turns.createResponse(greeting));
  if (opening !== undefined && !life.outcome) turns.whenIdle(handOver);
  while (!life.outcome) {
    const text = await port.nextMessage(life.signal);
    if (text === undefined) break;
    waiting.push(text);
    if (!life.outcome) turns.whenIdle(handOver);
  }
  await life.ended;
  life.close();
  // Nothing the peer wrote is lost: what the model never saw goes back to the conversation.
  if (waiting.length > 0 && !port.signal.aborted) port.unread(waiting.splice(0));
  await sending;
  const outcome = life.outcome!;
  const result = record.result(outcome.reason, outcome.extra);
  // Before the hang-up: the conversation's listeners go with it.
  emit({ type: 'ended', reason: result.reason });
  if (result.reason === 'end-call' && endCallOptions.hangup !== false) await port.hangup();
  return result;
}
