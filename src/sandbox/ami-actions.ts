import { type AmiActionHandler, type AmiReply, type AmiServer, amiError, amiSuccess } from './ami-server.js';
import { type Pbx, PbxError, splitAppData } from './pbx.js';
import { installInspectionActions, knownContexts } from './pbx-inspection.js';
import { amiChannelFields, parseCallerId, type SimChannel } from './sim-model.js';

type Entry = [string, string];

const failure = amiError;
const success = (message: string): AmiReply => amiSuccess(message);

/** Originate reasons as AMI reports them: 4 answered, 3 no answer, 0 busy/failed (sic). */
const ORIGINATE_REASON = { answered: 4, 'no-answer': 3, busy: 0, rejected: 0, failed: 0 } as const;

/**
 * The PBX-specific AMI actions of the simulator, answering like Asterisk 22's manager: Originate,
 * Hangup (by name or /regex/), Getvar/Setvar, DialplanExtensionAdd/Remove, MessageSend, SendText,
 * CoreShowChannels, and `Command` output for the few CLI commands the simulator knows.
 */
export function pbxActions(pbx: Pbx, server: AmiServer): Record<string, AmiActionHandler> {
  /** OriginateResponse goes to every session, carrying the ActionID of the Originate. */
  const publishWithId = (actionId: string | undefined, fields: Entry[]) => {
    const [event, privilege, ...rest] = fields;
    server.publishEvent([
      event!,
      privilege!,
      ...(actionId ? ([['ActionID', actionId]] as Entry[]) : []),
      ...rest,
    ]);
  };
  return {
    Originate(req) {
      const dial = req.get('Channel');
      if (!dial) return failure('Channel not specified');
      const app = req.get('Application');
      const data = req.get('Data') ?? '';
      const context = req.get('Context');
      const exten = req.get('Exten');
      const variables: Record<string, string> = {};
      for (const v of req.getAll('Variable')) {
        for (const pair of v.split(',')) {
          const eq = pair.indexOf('=');
          if (eq > 0) variables[pair.slice(0, eq)] = pair.slice(eq + 1);
        }
      }
      const callerId = parseCallerId(req.get('CallerID'));
      const timeoutMs = Number(req.get('Timeout') ?? 30000);
      const isStasis = app?.toLowerCase() === 'stasis';
      const [stasisApp, ...stasisArgs] = splitAppData(data);
      const async = ['true', 'yes', '1'].includes((req.get('Async') ?? '').toLowerCase());
      let outcome: { result: keyof typeof ORIGINATE_REASON; channel: SimChannel } | undefined;
      let responded = false;
      const report = () => {
        if (!outcome || !responded) return;
        const { result, channel } = outcome;
        publishWithId(req.actionId, [
          ['Event', 'OriginateResponse'],
          ['Privilege', 'call,all'],
          ['Response', result === 'answered' ? 'Success' : 'Failure'],
          ['Channel', result === 'answered' ? channel.name : dial],
          ...(isStasis || app
            ? ([
                ['Application', app ?? ''],
                ['Data', data],
              ] as [string, string][])
            : ([
                ['Context', context ?? ''],
                ['Exten', exten ?? ''],
              ] as [string, string][])),
          ['Reason', String(ORIGINATE_REASON[result])],
          ['Uniqueid', channel.id],
          ['CallerIDNum', channel.caller.number || '<unknown>'],
          ['CallerIDName', channel.caller.name || '<unknown>'],
        ]);
      };
      try {
        const channelId = req.get('ChannelId');
        pbx.originate({
          endpoint: dial,
          ...(isStasis && stasisApp ? { app: stasisApp, appArgs: stasisArgs } : {}),
          ...(!app && exten
            ? {
                location: {
                  context: context ?? 'default',
                  exten,
                  priority: Number(req.get('Priority') ?? 1),
                },
              }
            : {}),
          ...(callerId ? { callerId } : {}),
          timeoutSec: timeoutMs / 1000,
          ...(channelId ? { channelId } : {}),
          variables,
          onOutcome: (result, channel) => {
            outcome = { result, channel };
            report();
          },
        });
      } catch (e) {
        if (!(e instanceof PbxError)) throw e;
        if (!async) return failure('Originate failed');
        // Async: the failure arrives as an OriginateResponse with Reason 0 and the dial string.
        return {
          message: 'Originate successfully queued',
          after: () =>
            publishWithId(req.actionId, [
              ['Event', 'OriginateResponse'],
              ['Privilege', 'call,all'],
              ['Response', 'Failure'],
              ['Channel', dial],
              ['Reason', '0'],
              ['Uniqueid', '<null>'],
              ['CallerIDNum', '<unknown>'],
              ['CallerIDName', '<unknown>'],
            ]),
        };
      }
      return {
        message: 'Originate successfully queued',
        after: () => {
          responded = true;
          report();
        },
      };
    },

    Hangup(req) {
      const target = req.get('Channel');
      if (!target) return failure('No channel specified');
      const cause = Number(req.get('Cause') ?? 16) || 16;
      if (target.startsWith('/') && target.endsWith('/') && target.length > 2) {
        let re: RegExp;
        try {
          re = new RegExp(target.slice(1, -1));
        } catch {
          return failure('Invalid regex');
        }
        const hits = [...pbx.channels.values()].filter((c) => re.test(c.name));
        for (const c of hits) pbx.hangup(c, { initiator: 'app', cause });
        return {
          message: 'Channels hung up will follow',
          list: {
            items: hits.map((c): Entry[] => [
              ['Event', 'ChannelHungup'],
              ['Channel', c.name],
            ]),
            completeEvent: 'ChannelsHungupListComplete',
          },
        };
      }
      const channel = pbx.findChannelByName(target) ?? pbx.channels.get(target);
      if (!channel) return failure('No such channel');
      pbx.rememberSubscribers(channel);
      pbx.hangup(channel, { initiator: 'app', cause });
      return success('Channel Hungup');
    },

    Getvar(req) {
      const variable = req.get('Variable');
      if (!variable) return failure('No variable specified');
      const name = req.get('Channel');
      const channel = name ? pbx.findChannelByName(name) : undefined;
      if (name && !channel) return failure('No such channel');
      let value = '';
      try {
        value = pbx.getVariable(channel, variable);
      } catch {
        value = '';
      }
      return amiSuccess(undefined, [
        ['Variable', variable],
        ['Value', value],
      ]);
    },

    Setvar(req) {
      const variable = req.get('Variable');
      if (!variable) return failure('No variable specified');
      const name = req.get('Channel');
      const channel = name ? pbx.findChannelByName(name) : undefined;
      if (name && !channel) return failure('No such channel');
      pbx.setVariable(channel, variable, req.get('Value') ?? '');
      return success('Variable Set');
    },

    DialplanExtensionAdd(req) {
      const context = req.get('Context');
      const exten = req.get('Extension');
      const priorityText = req.get('Priority');
      const application = req.get('Application');
      if (!context || !exten || !priorityText || !application) {
        return failure(
          'Context, Extension, Priority, and Application must be defined for DialplanExtensionAdd.',
        );
      }
      const priority = Number(priorityText);
      if (!Number.isInteger(priority) || priority < 1) return failure('The priority specified was invalid.');
      const replace = ['yes', 'true', '1'].includes((req.get('Replace') ?? '').toLowerCase());
      const result = pbx.dialplan.add(
        context,
        exten,
        priority,
        { app: application, appData: req.get('ApplicationData') ?? '', registrar: 'pbx_config' },
        replace,
      );
      if (result === 'exists') return failure('That extension and priority already exist at that context');
      return success('Added requested extension');
    },

    DialplanExtensionRemove(req) {
      const context = req.get('Context');
      const exten = req.get('Extension');
      if (!context || !exten)
        return failure('Context and Extension must be provided for DialplanExtensionRemove.');
      const priorityText = req.get('Priority');
      const priority = priorityText === undefined ? undefined : Number(priorityText);
      if (!pbx.dialplan.remove(context, exten, priority))
        return failure('Failed to remove requested extension');
      return success(
        priority === undefined
          ? 'Removed the requested extension'
          : 'Removed the requested priority from the extension',
      );
    },

    MessageSend(req) {
      const destination = req.get('Destination');
      const toHeader = req.get('To');
      const to = destination ?? toHeader;
      if (!to) return failure("No 'To' address specified.");
      const b64 = req.get('Base64Body');
      const body = b64 !== undefined ? Buffer.from(b64, 'base64').toString('utf8') : (req.get('Body') ?? '');
      const variables: Record<string, string> = {};
      for (const v of req.getAll('Variable')) {
        const eq = v.indexOf('=');
        if (eq > 0) variables[v.slice(0, eq)] = v.slice(eq + 1);
      }
      if (!/^(pjsip|sip)[:/]/i.test(to)) return failure('Message technology not found.');
      try {
        pbx.sendMessage({
          to,
          from: req.get('From') ?? '',
          body,
          variables,
          ...(destination && toHeader ? { toHeader } : {}),
        });
      } catch {
        return failure('Message failed to send.');
      }
      return success('Message successfully sent');
    },

    SendText(req) {
      const name = req.get('Channel');
      if (!name) return failure('No channel specified');
      const message = req.get('Message');
      if (message === undefined) return failure('No Message specified');
      const channel = pbx.findChannelByName(name);
      if (!channel) return failure('No such channel');
      const sent = {
        endpoint: channel.resource,
        to: channel.name,
        toUser: channel.caller.number,
        from: '',
        body: message,
        variables: { 'Content-Type': req.get('Content-Type') ?? 'text/plain' },
        inDialog: true,
        channel: channel.name,
      };
      pbx.sentTexts.push(sent);
      pbx.emit('text-sent', sent);
      pbx.emit('text-in-call', channel, message);
      return success('Success');
    },

    ShowDialPlan(req) {
      const context = req.get('Context');
      const extension = req.get('Extension');
      const steps = pbx.dialplan
        .dump()
        .filter((d) => (!context || d.context === context) && (!extension || d.exten === extension));
      if (steps.length === 0 && context && !extension && knownContexts(pbx).has(context)) {
        // An empty context of extensions.conf exists: Asterisk lists nothing, successfully.
        return {
          message: 'DialPlan list will follow',
          list: {
            items: [],
            completeEvent: 'ShowDialPlanComplete',
            completeFields: [
              ['ListExtensions', '0'],
              ['ListPriorities', '0'],
              ['ListContexts', '1'],
            ],
          },
        };
      }
      if (steps.length === 0) {
        return amiError(context ? `Did not find context ${context}` : 'No dialplan found');
      }
      const contexts = new Set(steps.map((d) => d.context));
      const extensions = new Set(steps.map((d) => `${d.context}/${d.exten}`));
      return {
        message: 'DialPlan list will follow',
        list: {
          items: steps.map((d): Entry[] => [
            ['Event', 'ListDialplan'],
            ['Context', d.context],
            ['Extension', d.exten],
            ['Priority', String(d.priority)],
            ['Application', d.step.app],
            ['AppData', d.step.appData],
            ['Registrar', d.step.registrar],
          ]),
          completeEvent: 'ShowDialPlanComplete',
          completeFields: [
            ['ListExtensions', String(extensions.size)],
            ['ListPriorities', String(steps.length)],
            ['ListContexts', String(contexts.size)],
          ],
        },
      };
    },

    CoreShowChannels() {
      const channels = [...pbx.channels.values()];
      return {
        message: 'Channels will follow',
        list: {
          items: channels.map((c): Entry[] => [
            ['Event', 'CoreShowChannel'],
            ...amiChannelFields(c),
            ['Application', c.dialplan.app_name],
            ['ApplicationData', c.dialplan.app_data],
            ['Duration', '00:00:00'],
            ['BridgeId', c.bridgeId ?? ''],
          ]),
          completeEvent: 'CoreShowChannelsComplete',
        },
      };
    },
  };
}

/** The simulator's CLI for AMI `Command`: the few commands worth having. */
export function cliCommand(pbx: Pbx, command: string): { ok: boolean; lines: string[] } | undefined {
  const c = command.trim().replace(/\s+/g, ' ');
  if (c === 'core show channels' || c === 'core show channels concise') {
    const lines = [
      'Channel                                Location                  State   Application(Data)',
    ];
    for (const ch of pbx.channels.values()) {
      lines.push(
        `${ch.name.padEnd(38)} ${`${ch.dialplan.exten}@${ch.dialplan.context}:${ch.dialplan.priority}`.padEnd(25)} ${ch.state.padEnd(7)} ${ch.dialplan.app_name}(${ch.dialplan.app_data})`,
      );
    }
    lines.push(`${pbx.channels.size} active channel${pbx.channels.size === 1 ? '' : 's'}`);
    return { ok: true, lines };
  }
  if (c.startsWith('dialplan show')) {
    const lines = pbx.dialplan
      .dump()
      .map(
        (d) =>
          `[ ${d.context} ] '${d.exten}' => ${d.priority}. ${d.step.app}(${d.step.appData}) [${d.step.registrar}]`,
      );
    return { ok: true, lines: lines.length ? lines : ['There is no existence of dialplan'] };
  }
  if (c === 'pjsip show endpoints') {
    const lines = [...pbx.endpoints.values()].map(
      (e) => ` Endpoint:  ${e.resource.padEnd(40)} ${e.online ? 'Not in use' : 'Unavailable'}`,
    );
    return { ok: true, lines: [...lines, '', `Objects found: ${pbx.endpoints.size}`] };
  }
  return undefined;
}

/**
 * Actions a loadable module provides (everything else here is registered by the core: manager.c,
 * pbx.c ShowDialPlan, message.c MessageSend). They answer `Invalid/unknown command` during the boot
 * window, before the module is loaded.
 */
const MODULE_OF: Readonly<Record<string, string>> = {
  DialplanExtensionAdd: 'pbx_config',
  DialplanExtensionRemove: 'pbx_config',
};

/** Registers the PBX actions and CLI on `server`, and publishes the PBX's AMI events on it. */
export function installAmiActions(server: AmiServer, pbx: Pbx): () => void {
  for (const [name, handler] of Object.entries(pbxActions(pbx, server)))
    server.registerAction(name, handler, MODULE_OF[name] ? { module: MODULE_OF[name] } : {});
  installInspectionActions(server, pbx);
  server.setCliHandler((command) => cliCommand(pbx, command));
  server.setCallCounts(() => ({ currentCalls: pbx.channels.size, processedCalls: pbx.channels.size }));
  const forward = (fields: Entry[]) => server.publishEvent(fields);
  pbx.on('ami', forward);
  return () => pbx.off('ami', forward);
}
