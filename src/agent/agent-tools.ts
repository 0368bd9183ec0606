import { z } from 'zod';
import { ConfigError } from '../errors.js';
import type {
  AgentTool,
  AgentToolCall,
  AgentToolContext,
  JsonSchema,
  ZodLikeSchema,
} from './agent-options.js';
import type { RealtimeToolSchema } from './realtime-transport.js';

export const END_CALL_TOOL = 'end_call';
export const TRANSFER_TOOL = 'transfer_call';
const TOOL_NAME = /^[a-zA-Z0-9_-]{1,64}$/;
const NO_ARGUMENTS: JsonSchema = { type: 'object', properties: {}, additionalProperties: false };

/** What a tool call asks the session to do besides answering the model. */
export type ToolControl = { kind: 'end-call' } | { kind: 'transfer'; target: string };

/** The outcome of one function call of the model. */
export interface ToolOutcome {
  /** The model's id of the call, which the output answers. */
  callId: string;
  /** The `function_call_output` sent back to the model. */
  output: string;
  record: AgentToolCall;
  control?: ToolControl;
}

/** The tools of one session: what the model is told, and how a call of one is run. */
export interface ToolSet<UI> {
  readonly schemas: RealtimeToolSchema[];
  run(
    call: { callId: string; name: string; arguments: string },
    context: Omit<AgentToolContext<UI>, 'callId' | 'signal'>,
    sessionSignal: AbortSignal,
  ): Promise<ToolOutcome>;
}

/**
 * Validates the user's tools and adds the built-ins: `end_call` (unless disabled) and, when
 * `transferTargets` names any, `transfer_call`, whose only argument is one of those names.
 *
 * @throws {ConfigError} for a bad or duplicate name, or a parameters schema that is neither JSON
 *   Schema nor zod v4.
 */
export function buildToolSet<UI>(options: {
  tools: readonly AgentTool<UI>[];
  endCall: boolean;
  transferTargets: readonly string[];
  toolTimeoutMs: number;
}): ToolSet<UI> {
  const byName = new Map<string, { tool: AgentTool<UI>; validate?: ZodLikeSchema }>();
  const schemas: RealtimeToolSchema[] = [];
  const reserved = new Set([END_CALL_TOOL, TRANSFER_TOOL]);
  for (const tool of options.tools) {
    if (!TOOL_NAME.test(tool.name))
      throw new ConfigError('tools', `Tool name ${JSON.stringify(tool.name)} must match ${TOOL_NAME}`);
    if (byName.has(tool.name) || reserved.has(tool.name))
      throw new ConfigError('tools', `Tool name ${JSON.stringify(tool.name)} is used twice or is a built-in`);
    if (typeof tool.handler !== 'function')
      throw new ConfigError('tools', `Tool ${tool.name} has no handler function`);
    const { parameters, validate } = toJsonSchema(tool);
    byName.set(tool.name, { tool, ...(validate ? { validate } : {}) });
    schemas.push({ name: tool.name, description: tool.description, parameters });
  }
  if (options.endCall) {
    schemas.push({
      name: END_CALL_TOOL,
      description:
        'Ends the phone call or conversation. Call it only after saying goodbye, when the caller is done or asks to hang up.',
      parameters: NO_ARGUMENTS,
    });
  }
  if (options.transferTargets.length > 0) {
    schemas.push({
      name: TRANSFER_TOOL,
      description:
        'Transfers the caller to a person or department. Only these destinations exist: ' +
        `${options.transferTargets.join(', ')}. Tell the caller before transferring.`,
      parameters: {
        type: 'object',
        properties: { destination: { type: 'string', enum: [...options.transferTargets] } },
        required: ['destination'],
        additionalProperties: false,
      },
    });
  }
  const targets = new Set(options.transferTargets);

  return {
    schemas,
    async run(call, context, sessionSignal) {
      const startedAt = performance.now();
      const args = parseArguments(call.arguments);
      const finish = (result: unknown, error?: string, control?: ToolControl): ToolOutcome => {
        const record: AgentToolCall = {
          name: call.name,
          args,
          result,
          ms: performance.now() - startedAt,
          ...(error === undefined ? {} : { error }),
        };
        return {
          callId: call.callId,
          output: JSON.stringify(result ?? null),
          record,
          ...(control ? { control } : {}),
        };
      };
      const refuse = (error: string): ToolOutcome => finish({ error }, error);

      if (call.name === END_CALL_TOOL && options.endCall)
        return finish({ ok: true }, undefined, { kind: 'end-call' });
      if (call.name === TRANSFER_TOOL && targets.size > 0) {
        const destination = isRecord(args) ? args.destination : undefined;
        // The enum in the schema is a request to the model, not a guarantee: check it here.
        if (typeof destination !== 'string' || !targets.has(destination))
          return refuse(
            `Unknown destination ${JSON.stringify(destination)}; allowed: ${[...targets].join(', ')}`,
          );
        return finish({ ok: true, transferring_to: destination }, undefined, {
          kind: 'transfer',
          target: destination,
        });
      }
      const entry = byName.get(call.name);
      if (!entry) return refuse(`There is no tool named ${JSON.stringify(call.name)}`);
      if (args === INVALID_JSON) return refuse('The arguments are not valid JSON');
      let value: Record<string, unknown> = isRecord(args) ? args : {};
      if (entry.validate) {
        const parsed = entry.validate.safeParse(value);
        if (!parsed.success) return refuse(`Invalid arguments: ${parsed.error.message}`);
        value = parsed.data as Record<string, unknown>;
      }
      const timeoutMs = entry.tool.timeoutMs ?? options.toolTimeoutMs;
      try {
        const result = await runWithTimeout(
          (signal) => entry.tool.handler(value, { ...context, callId: call.callId, signal }),
          timeoutMs,
          sessionSignal,
        );
        return finish(result === undefined ? { ok: true } : result);
      } catch (error) {
        const message =
          error instanceof ToolTimeout
            ? `The tool did not answer within ${timeoutMs} ms`
            : `The tool failed: ${error instanceof Error ? error.message : String(error)}`;
        return refuse(message);
      }
    },
  };
}

const INVALID_JSON = Symbol('invalid JSON');

function parseArguments(text: string): unknown {
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return INVALID_JSON;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isZod(schema: JsonSchema | ZodLikeSchema): schema is ZodLikeSchema {
  return typeof (schema as ZodLikeSchema).safeParse === 'function';
}

function toJsonSchema<UI>(tool: AgentTool<UI>): {
  parameters: Record<string, unknown>;
  validate?: ZodLikeSchema;
} {
  const schema = tool.parameters;
  if (schema === undefined) return { parameters: { ...NO_ARGUMENTS } };
  if (!isZod(schema)) return { parameters: { ...schema } };
  if (!('_zod' in schema))
    throw new ConfigError(
      'tools',
      `Tool ${tool.name}: only zod v4 schemas are supported (or pass a JSON Schema)`,
    );
  const { $schema: _dialect, ...parameters } = z.toJSONSchema(schema as unknown as z.ZodType) as Record<
    string,
    unknown
  >;
  return { parameters, validate: schema };
}

class ToolTimeout extends Error {}

/** Runs `work` with a signal that aborts after `timeoutMs` or with the session; rejects with ToolTimeout on time-out. */
async function runWithTimeout(
  work: (signal: AbortSignal) => unknown,
  timeoutMs: number,
  sessionSignal: AbortSignal,
): Promise<unknown> {
  const controller = new AbortController();
  const onSessionEnd = (): void => controller.abort(sessionSignal.reason);
  sessionSignal.addEventListener('abort', onSessionEnd, { once: true });
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort(new ToolTimeout());
      reject(new ToolTimeout());
    }, timeoutMs);
  });
  try {
    return await Promise.race([Promise.resolve().then(() => work(controller.signal)), timedOut]);
  } finally {
    clearTimeout(timer);
    sessionSignal.removeEventListener('abort', onSessionEnd);
  }
}
