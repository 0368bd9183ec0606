import type { Config } from '../config.js';
import { InvalidInputError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { AgentOptions } from './agent-options.js';
import { openAIRealtimeTransportFactory } from './openai-realtime-transport.js';
import type { RealtimeTransport } from './realtime-transport.js';

/** A session's model, voice and connection, resolved from its options and the config. */
export interface AgentSettings {
  model: string;
  voice: string;
  transport: RealtimeTransport;
}

/**
 * Checks the options and builds the model connection (not opened yet). Called before the call or
 * conversation is touched, so a missing key or a bad option fails with nothing half done.
 *
 * @throws {ConfigError} when no OpenAI key is available (and no client or transport was given).
 * @throws {InvalidInputError} for missing instructions or a bad option.
 */
export function resolveAgentSettings<UI, Target>(
  config: Config,
  options: AgentOptions<UI, Target>,
  logger: Logger,
): AgentSettings {
  if (typeof options?.instructions !== 'string' || options.instructions.trim() === '')
    throw new InvalidInputError(
      'connectOpenAIAgent needs `instructions`: who the agent is and what it may do',
    );
  if (options.minBargeInMs !== undefined && !(options.minBargeInMs >= 0 && options.minBargeInMs <= 5000))
    throw new InvalidInputError(`minBargeInMs takes 0 to 5000 ms, not ${options.minBargeInMs}`);
  const connection = options.connection ?? {};
  const factory =
    connection.transport ??
    openAIRealtimeTransportFactory({
      client: connection.client,
      apiKey: config.openaiApiKey,
      websocket: connection.websocket,
    });
  return {
    model: options.model ?? config.openaiRealtimeModel,
    voice: options.voice ?? config.systemVoice,
    transport: factory({ logger }),
  };
}
