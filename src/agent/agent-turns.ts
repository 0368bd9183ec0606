import type { Logger } from '../logger.js';
import type { AgentEvent, AgentToolContext } from './agent-options.js';
import type { AgentRecord } from './agent-record.js';
import type { ToolControl, ToolOutcome, ToolSet } from './agent-tools.js';
import type { RealtimeEvent, RealtimeTransport } from './realtime-transport.js';

/** What {@link AgentTurns} tells the session it serves. */
export interface TurnsHooks {
  emit(event: AgentEvent): void;
  /** A built-in tool asked to end the call or transfer it; its output has been sent to the model. */
  onControl(control: ToolControl): void;
  /** An assistant item's final words (text sessions send them as a message). */
  onAssistantText?(itemId: string, text: string): void;
}

/**
 * The turn-taking both sessions share: which response is in progress, the tool round of each
 * response (handlers run as soon as the model calls them; their outputs and the follow-up
 * response go out once the response is done, because the model refuses a second response while
 * one is active), the requests that must wait for the model to be idle, transcripts and usage.
 */
export class AgentTurns<UI> {
  readonly #transport: RealtimeTransport;
  readonly #tools: ToolSet<UI>;
  readonly #toolContext: Omit<AgentToolContext<UI>, 'callId' | 'signal'>;
  readonly #record: AgentRecord;
  readonly #hooks: TurnsHooks;
  readonly #signal: AbortSignal;
  readonly #logger: Logger;
  #activeResponse: string | undefined;
  /** A response.create was sent and its response.created has not come yet. */
  #awaitingResponse = false;
  /** Tool runs per response id, started as the calls arrive. */
  readonly #toolRuns = new Map<string, Promise<ToolOutcome>[]>();
  /** Responses whose tool round is being finished (outputs not sent yet). */
  #roundsPending = 0;
  readonly #idleQueue: (() => void)[] = [];
  /** Partial transcripts by item, for the `transcript` events' running text. */
  readonly #partials = new Map<string, string>();

  constructor(init: {
    transport: RealtimeTransport;
    tools: ToolSet<UI>;
    toolContext: Omit<AgentToolContext<UI>, 'callId' | 'signal'>;
    record: AgentRecord;
    hooks: TurnsHooks;
    signal: AbortSignal;
    logger: Logger;
  }) {
    this.#transport = init.transport;
    this.#tools = init.tools;
    this.#toolContext = init.toolContext;
    this.#record = init.record;
    this.#hooks = init.hooks;
    this.#signal = init.signal;
    this.#logger = init.logger;
  }

  /** The id of the response in progress, if any. */
  get activeResponse(): string | undefined {
    return this.#activeResponse;
  }

  /** True when no response is in progress, requested, or waiting for its tools. */
  get idle(): boolean {
    return this.#activeResponse === undefined && !this.#awaitingResponse && this.#roundsPending === 0;
  }

  /** Runs `fn` now if the model is idle, otherwise at the next idle moment (in request order). */
  whenIdle(fn: () => void): void {
    this.#idleQueue.push(fn);
    this.#drainIdleQueue();
  }

  /** Asks for a response (at once: call it from {@link whenIdle}). */
  createResponse(instructions?: string): void {
    this.#awaitingResponse = true;
    this.#transport.createResponse(instructions ? { instructions } : {});
  }

  /** Cancels the response in progress, if any; returns its id. */
  cancelActive(): string | undefined {
    const id = this.#activeResponse;
    if (id !== undefined) this.#transport.cancelResponse();
    return id;
  }

  /** Handles a model event that is not audio. */
  handle(event: RealtimeEvent): void {
    switch (event.type) {
      case 'responseStarted':
        this.#activeResponse = event.responseId;
        this.#awaitingResponse = false;
        break;
      case 'responseDone':
        this.#record.addUsage(event.usage);
        if (this.#activeResponse === event.responseId) this.#activeResponse = undefined;
        this.#finishToolRound(event.responseId);
        this.#drainIdleQueue();
        break;
      case 'functionCall':
        this.#startTool(event);
        break;
      case 'assistantText':
        this.#transcript('assistant', event.itemId, event.text, event.final);
        if (event.final) this.#hooks.onAssistantText?.(event.itemId, event.text);
        break;
      case 'userTranscript':
        this.#transcript('user', event.itemId, event.text, event.final);
        break;
      case 'error':
        // A refused response.create (e.g. one was already active) must not leave us waiting forever.
        this.#awaitingResponse = false;
        if (event.code === 'response_cancel_not_active') {
          // A barge-in's cancel crossed the response's own end on the wire: nothing went wrong.
          this.#logger.debug({ err: event.message }, 'The response had already ended');
          this.#drainIdleQueue();
          break;
        }
        this.#logger.debug({ code: event.code, err: event.message }, 'The realtime model reported an error');
        this.#hooks.emit({ type: 'error', error: new Error(event.message), fatal: false });
        this.#drainIdleQueue();
        break;
      default:
        break;
    }
  }

  #transcript(role: 'user' | 'assistant', itemId: string, text: string, final: boolean): void {
    if (final) {
      this.#partials.delete(itemId);
      if (text.trim() === '') return;
      this.#record.addLine(role, text, itemId);
      this.#hooks.emit({ type: 'transcript', role, text, final: true, itemId });
      return;
    }
    const sofar = (this.#partials.get(itemId) ?? '') + text;
    this.#partials.set(itemId, sofar);
    this.#hooks.emit({ type: 'transcript', role, text: sofar, final: false, itemId });
  }

  #startTool(call: Extract<RealtimeEvent, { type: 'functionCall' }>): void {
    const run = this.#tools.run(call, this.#toolContext, this.#signal);
    const runs = this.#toolRuns.get(call.responseId) ?? [];
    runs.push(run);
    this.#toolRuns.set(call.responseId, runs);
  }

  /** After a response is done: send its tools' outputs, then continue (or hand over control). */
  #finishToolRound(responseId: string): void {
    const runs = this.#toolRuns.get(responseId);
    if (!runs) return;
    this.#toolRuns.delete(responseId);
    this.#roundsPending++;
    void Promise.all(runs).then((outcomes) => {
      this.#roundsPending--;
      if (this.#signal.aborted) return;
      let control: ToolControl | undefined;
      for (const outcome of outcomes) {
        this.#record.toolCalls.push(outcome.record);
        this.#hooks.emit({ type: 'toolCall', ...outcome.record });
        this.#transport.addToolResult(outcome.callId, outcome.output);
        control ??= outcome.control;
      }
      if (control) this.#hooks.onControl(control);
      else this.createResponse();
      this.#drainIdleQueue();
    });
  }

  #drainIdleQueue(): void {
    while (this.idle && this.#idleQueue.length > 0 && !this.#signal.aborted) this.#idleQueue.shift()!();
  }
}
