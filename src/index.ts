/**
 * asteramisk: program the Asterisk PBX like Twilio. Start with {@link Server}; see README.md.
 */

export { type AgentAudioLatency, audioLatencyChannel } from './agent/agent-diagnostics.js';
export type * from './agent/agent-options.js';
export type * from './agent/realtime-transport.js';
export { AmiClient } from './asterisk/ami-client.js';
export type * from './asterisk/ami-types.js';
export { AriClient, type AriClientOptions, type AriReconnectedInfo } from './asterisk/ari-client.js';
export type * from './asterisk/ari-events.js';
export type * from './asterisk/ari-types.js';
export { AsteriskConnection, type AsteriskConnectionTuning } from './asterisk/asterisk-connection.js';
export { type DialplanEntry, DialplanRegistrar } from './asterisk/dialplan-registrar.js';
export { type OutgoingMessage, sendMessage } from './asterisk/message-sender.js';
export { PbxReadiness, type PbxReadinessState } from './asterisk/pbx-readiness.js';
export type { AsteriskTlsOptions } from './asterisk/tls.js';
export type { CallServicesOptions } from './call-services.js';
export {
  Communicator,
  type MakeCallOptions,
  type MakeConversationOptions,
  type MakeTextOptions,
} from './communicator.js';
export { type Config, type ConfigOptions, ENV_NAMES, redactConfig, resolveConfig } from './config.js';
export * from './errors.js';
export {
  createDefaultLogger,
  type DefaultLoggerOptions,
  type LogFields,
  type LogFormat,
  type Logger,
  silentLogger,
} from './logger.js';
export type { MetricsOptions } from './metrics.js';
export type { RecoveryAttemptFailure, RuntimeOptions, TextIntakeState } from './runtime.js';
export type { SentText } from './sandbox/pbx.js';
export { type PhoneHeard, SimPhone } from './sandbox/sim-phone.js';
export {
  SimCallRejectedError,
  Simulator,
  type SimulatorOptions,
  type SimulatorRestartOptions,
  type SimulatorState,
} from './sandbox/simulator.js';
export {
  type CloseOptions,
  type DrainResult,
  type ExtensionHandlers,
  Server,
  type ServerEvents,
  type ServerHealth,
  type ServerOptions,
  type TextHandler,
  type VoiceHandler,
} from './server.js';
export * from './stt/index.js';
export * from './tts/index.js';
export type { ChoiceOptions, MenuAction } from './ui/conversation.js';
export { normalizeNumber, parseSipAddress, type SipAddress, type TextPeer } from './ui/sip-address.js';
export type { TextOverflow } from './ui/text-conversations.js';
export type { TextRateLimit } from './ui/text-outbox.js';
export {
  type TextAgentOptions,
  type TextGatherOptions,
  type TextPromptOptions,
  TextUI,
  type TextUIEvents,
} from './ui/text-ui.js';
export type { GatherOptions } from './ui/verbs/gather.js';
export type { PromptOptions } from './ui/verbs/prompt.js';
export { type Recording, RecordingHangupError, type RecordOptions } from './ui/verbs/record.js';
export {
  type PlayableMedia,
  type SayOptions,
  type TransferDestination,
  type VoiceAgentOptions,
  VoiceUI,
  type VoiceUIEvents,
  type VoiceUIState,
} from './ui/voice-ui.js';
