import type { AmiServer } from './ami-server.js';
import { amiError, amiSuccess } from './ami-server.js';
import type { Pbx } from './pbx.js';

/**
 * The modules the simulated Asterisk reports as loaded to AMI `ModuleCheck` (what
 * `asteramisk doctor` asks for, as Asterisk 22 built with default menuselect loads them).
 * {@link AmiServer.unloadModule} makes one answer `Module not loaded`.
 */
export const SIM_LOADED_MODULES: readonly string[] = [
  'res_ari',
  'res_ari_model',
  'res_ari_applications',
  'res_ari_asterisk',
  'res_ari_bridges',
  'res_ari_channels',
  'res_ari_device_states',
  'res_ari_endpoints',
  'res_ari_events',
  'res_ari_playbacks',
  'res_ari_recordings',
  'res_ari_sounds',
  'res_stasis',
  'res_stasis_answer',
  'res_stasis_playback',
  'res_stasis_recording',
  'res_stasis_snoop',
  'app_stasis',
  'res_http_websocket',
  'chan_pjsip',
  'res_pjsip',
  'res_pjsip_messaging',
  'chan_rtp',
  'res_rtp_asterisk',
  'func_talkdetect',
  'pbx_config',
  'codec_ulaw',
  'format_wav',
];

/** Contexts that exist: those with extensions, plus the (possibly empty) ones endpoints name, as extensions.conf declares them. */
export function knownContexts(pbx: Pbx): Set<string> {
  const contexts = new Set(pbx.dialplan.dump().map((d) => d.context));
  for (const ep of pbx.endpoints.values()) {
    contexts.add(ep.context);
    contexts.add(ep.messageContext);
  }
  return contexts;
}

/**
 * Read-only inspection actions of Asterisk 22, answered as captured from a real 22.10.1:
 * `ModuleCheck` (Success with an empty `Version`, or `Module not loaded`), `PJSIPShowEndpoints`
 * (EndpointList items, EndpointListComplete) and `PJSIPShowEndpoint` (EndpointDetail with the
 * endpoint's Context and MessageContext, EndpointDetailComplete; an unknown endpoint is a bare
 * `Response: Error`).
 */
export function installInspectionActions(server: AmiServer, pbx: Pbx): void {
  server.registerAction(
    'ModuleCheck',
    (req) => {
      const name = (req.get('Module') ?? '').replace(/\.so$/, '');
      if (name === '') return amiError('Module not specified');
      if (!SIM_LOADED_MODULES.includes(name) || !server.isModuleLoaded(name)) {
        return amiError('Module not loaded');
      }
      return amiSuccess(undefined, [['Version', '']]);
    },
    { privilege: 'system,all' },
  );
  server.registerAction(
    'PJSIPShowEndpoints',
    () => {
      if (pbx.endpoints.size === 0) return amiError('No endpoints found');
      const names = [...pbx.endpoints.keys()].sort();
      return {
        message: 'A listing of Endpoints follows, presented as EndpointList events',
        list: {
          items: names.map((name) => [
            ['Event', 'EndpointList'],
            ['ObjectType', 'endpoint'],
            ['ObjectName', name],
            ['Transport', ''],
            ['Aor', name],
            ['Auths', ''],
            ['OutboundAuths', ''],
            ['Contacts', pbx.endpoints.get(name)!.online ? `${name}/sip:${name}@127.0.0.1:5060,` : ''],
            ['DeviceState', pbx.endpoints.get(name)!.online ? 'Not in use' : 'Unavailable'],
            ['ActiveChannels', '0'],
          ]),
          completeEvent: 'EndpointListComplete',
        },
      };
    },
    { privilege: 'system,all' },
  );
  server.registerAction(
    'PJSIPShowEndpoint',
    (req) => {
      const name = req.get('Endpoint') ?? '';
      if (name === '') return amiError('Endpoint parameter missing.');
      const ep = pbx.endpoints.get(name);
      if (!ep) return { response: 'Error' };
      return {
        message: 'Following are Events for each object associated with the Endpoint',
        list: {
          items: [
            [
              ['Event', 'EndpointDetail'],
              ['ObjectType', 'endpoint'],
              ['ObjectName', name],
              ['Context', ep.context],
              ['MessageContext', ep.messageContext],
              ['Aors', name],
              ['Callerid', `"${ep.callerId.name}" <${ep.callerId.number}>`],
              ['DirectMedia', 'false'],
              ['Allow', '(ulaw|alaw)'],
              ['DeviceState', ep.online ? 'Not in use' : 'Unavailable'],
              ['ActiveChannels', ''],
            ],
          ],
          completeEvent: 'EndpointDetailComplete',
        },
      };
    },
    { privilege: 'system,all' },
  );
}
