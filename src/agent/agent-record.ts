import type {
  AgentDurations,
  AgentEndReason,
  AgentResult,
  AgentToolCall,
  AgentTranscriptEntry,
  AgentUsage,
} from './agent-options.js';
import type { RealtimeEvent } from './realtime-transport.js';

/** What a session has to report at its end: the transcript, tool calls, usage and timings. */
export class AgentRecord {
  readonly transcript: AgentTranscriptEntry[] = [];
  readonly toolCalls: AgentToolCall[] = [];
  readonly usage: AgentUsage = {
    responses: 0,
    inputTokens: 0,
    outputTokens: 0,
    totalTokens: 0,
    inputAudioTokens: 0,
    outputAudioTokens: 0,
  };
  readonly durations: Omit<AgentDurations, 'totalMs'> = {
    connectMs: 0,
    agentSpeechMs: 0,
    bargeIns: 0,
    falseBargeIns: 0,
  };
  readonly #startedAt = performance.now();
  /** Assistant transcript entries by item, so an interruption can be marked on the right one. */
  readonly #assistantEntries = new Map<string, AgentTranscriptEntry>();
  readonly #interrupted = new Set<string>();

  addUsage(usage: Extract<RealtimeEvent, { type: 'responseDone' }>['usage']): void {
    const u = this.usage;
    u.responses++;
    u.inputTokens += usage.inputTokens ?? 0;
    u.outputTokens += usage.outputTokens ?? 0;
    u.totalTokens += usage.totalTokens ?? 0;
    u.inputAudioTokens += usage.inputAudioTokens ?? 0;
    u.outputAudioTokens += usage.outputAudioTokens ?? 0;
  }

  addLine(role: 'user' | 'assistant', text: string, itemId: string): void {
    if (text.trim() === '') return;
    const entry: AgentTranscriptEntry = { role, text, at: new Date() };
    if (role === 'assistant') {
      if (this.#interrupted.has(itemId)) entry.interrupted = true;
      this.#assistantEntries.set(itemId, entry);
    }
    this.transcript.push(entry);
  }

  /** The caller cut this assistant item short (its transcript may come before or after). */
  markInterrupted(itemId: string): void {
    this.#interrupted.add(itemId);
    const entry = this.#assistantEntries.get(itemId);
    if (entry) entry.interrupted = true;
  }

  result(
    reason: AgentEndReason,
    extra: Partial<Pick<AgentResult, 'transferTarget' | 'digit' | 'error'>>,
  ): AgentResult {
    return {
      reason,
      ...extra,
      transcript: this.transcript,
      toolCalls: this.toolCalls,
      usage: this.usage,
      durations: { totalMs: performance.now() - this.#startedAt, ...this.durations },
    };
  }
}
