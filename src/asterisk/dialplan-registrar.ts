import { AmiActionError } from '../errors.js';
import type { AmiClient } from './ami-client.js';

/** One dialplan step this process added. */
export interface DialplanEntry {
  context: string;
  extension: string;
  priority: number;
  application: string;
  applicationData: string;
}

/** One step of an extension as ShowDialPlan lists it. */
export interface DialplanStepInfo {
  priority: number;
  application: string;
  appData: string;
}

/** What a step that stepped out becomes when instances are stacked after it (see removeEntry). */
const PLACEHOLDER_DATA = 'asteramisk: an instance left; on to the next priority';

function isPlaceholder(step: DialplanStepInfo): boolean {
  return step.application.toLowerCase() === 'noop' && step.appData === PLACEHOLDER_DATA;
}

/** How many times to look again when another instance takes the priority we chose meanwhile. */
const MAX_ATTEMPTS = 5;

/**
 * Adds and removes dialplan steps over AMI, stacking behind other instances: if priority 1 of an
 * extension belongs to someone else, this instance takes the next free priority, so several
 * processes can serve one number (the first one over capacity continues to the next). It removes
 * exactly what it added, never anyone else's steps; a step with others stacked after it becomes a
 * pass-through `NoOp` instead (Asterisk stops at the first missing priority), and the last one
 * to leave removes those placeholders.
 *
 * Adding a step that is already there (the same application and data: the same app name) adopts
 * it instead of stacking a copy, so registering again after an AMI reconnect is safe whether or
 * not Asterisk restarted meanwhile.
 *
 * Free priorities come from `ShowDialPlan` (a structured list), not from parsing error texts.
 */
export class DialplanRegistrar {
  private readonly added = new Map<string, DialplanEntry>();
  /** Adds under way, by context/extension/data: a second add of the same step joins the first. */
  private readonly adding = new Map<string, Promise<DialplanEntry>>();

  constructor(private readonly ami: AmiClient) {}

  /** What this registrar has added and not yet removed. */
  entries(): DialplanEntry[] {
    return [...this.added.values()];
  }

  /**
   * Adds `application(applicationData)` to `context`/`extension` at the first priority after the
   * existing ones. Returns the entry added. Idempotent per (context, extension, application data).
   */
  add(
    context: string,
    extension: string,
    application: string,
    applicationData: string,
  ): Promise<DialplanEntry> {
    const existing = [...this.added.values()].find(
      (e) => e.context === context && e.extension === extension && e.applicationData === applicationData,
    );
    if (existing) return Promise.resolve(existing);
    const flightKey = `${context}\u0000${extension}\u0000${applicationData}`;
    const inFlight = this.adding.get(flightKey);
    if (inFlight) return inFlight;
    const flight = this.addAtFreePriority(context, extension, application, applicationData).finally(() =>
      this.adding.delete(flightKey),
    );
    this.adding.set(flightKey, flight);
    return flight;
  }

  private async addAtFreePriority(
    context: string,
    extension: string,
    application: string,
    applicationData: string,
  ): Promise<DialplanEntry> {
    for (let attempt = 1; ; attempt++) {
      const steps = await this.steps(context, extension);
      // Our step may still be there: after an AMI reconnect without an Asterisk restart (a network
      // cut, a dead connection), or a restart that kept it. Adding it again would stack a duplicate.
      const ours = steps.find(
        (step) =>
          step.application.toLowerCase() === application.toLowerCase() && step.appData === applicationData,
      );
      if (ours) {
        const entry: DialplanEntry = {
          context,
          extension,
          priority: ours.priority,
          application,
          applicationData,
        };
        this.added.set(key(entry), entry);
        return entry;
      }
      const taken = steps.map((step) => step.priority);
      const priority = taken.length === 0 ? 1 : Math.max(...taken) + 1;
      try {
        await this.ami.action({
          Action: 'DialplanExtensionAdd',
          Context: context,
          Extension: extension,
          Priority: priority,
          Application: application,
          ApplicationData: applicationData,
        });
      } catch (error) {
        // Another instance may have taken the priority between our look and our add: look again.
        if (
          error instanceof AmiActionError &&
          attempt < MAX_ATTEMPTS &&
          (await this.isTaken(context, extension, priority))
        )
          continue;
        throw error;
      }
      const entry: DialplanEntry = { context, extension, priority, application, applicationData };
      this.added.set(key(entry), entry);
      return entry;
    }
  }

  /** Removes every step this registrar added for `extension` (in any context). */
  async remove(extension: string): Promise<void> {
    for (const entry of [...this.added.values()]) {
      if (entry.extension !== extension) continue;
      await this.removeEntry(entry);
    }
  }

  /**
   * Removes a step another instance added and can no longer remove (it died: a fleet member whose
   * heartbeat stopped), the way it would have itself: a pass-through placeholder when steps follow,
   * else removed along with the placeholders before it. Resolves false when there is no such step.
   */
  async retire(
    context: string,
    extension: string,
    application: string,
    applicationData: string,
  ): Promise<boolean> {
    const steps = await this.steps(context, extension);
    const theirs = steps.find(
      (step) =>
        step.application.toLowerCase() === application.toLowerCase() && step.appData === applicationData,
    );
    if (!theirs) return false;
    await this.removeEntry({ context, extension, priority: theirs.priority, application, applicationData });
    return true;
  }

  /** Removes everything this registrar added. Errors are collected, not thrown one by one. */
  async removeAll(): Promise<Error[]> {
    const errors: Error[] = [];
    for (const entry of [...this.added.values()]) {
      try {
        await this.removeEntry(entry);
      } catch (error) {
        errors.push(error as Error);
      }
    }
    return errors;
  }

  /**
   * Takes back entries forgotten by {@link forgetAll} whose fate is unknown (AMI was down), so that
   * {@link removeAll} removes them if they are still there, and only if still ours.
   */
  remember(entries: readonly DialplanEntry[]): void {
    for (const entry of entries) if (!this.added.has(key(entry))) this.added.set(key(entry), entry);
  }

  /**
   * Forgets everything without touching Asterisk (after a restart wiped the in-memory dialplan, or
   * a reconnect after which it is unknown). A later {@link add} of the same step finds it again if
   * it survived.
   */
  forgetAll(): DialplanEntry[] {
    const entries = this.entries();
    this.added.clear();
    return entries;
  }

  /**
   * Removes one step. Asterisk runs an extension from priority 1 and goes on at priority + 1 until
   * one is missing, so a hole would cut off the instances stacked after us (a call to a number
   * without priority 1 is not even routed). When later steps exist, ours becomes a pass-through
   * `NoOp` placeholder instead; the last step to leave also removes the placeholders before it.
   */
  private async removeEntry(entry: DialplanEntry): Promise<void> {
    const { context, extension, priority } = entry;
    const steps = await this.steps(context, extension);
    const mine = steps.find((step) => step.priority === priority);
    if (mine && !this.isMine(mine, entry)) {
      // Not ours any more (Asterisk restarted and someone else took the priority): leave it.
      this.added.delete(key(entry));
      return;
    }
    if (mine && steps.some((step) => step.priority > priority && !isPlaceholder(step))) {
      await this.ami.action({
        Action: 'DialplanExtensionAdd',
        Context: context,
        Extension: extension,
        Priority: priority,
        Application: 'NoOp',
        ApplicationData: PLACEHOLDER_DATA,
        Replace: 'yes',
      });
      this.added.delete(key(entry));
      return;
    }
    if (mine) await this.removeStep(context, extension, priority);
    this.added.delete(key(entry));
    // Placeholders left before us (and after us) by instances that left earlier go with us.
    const others = steps.filter((step) => step.priority !== priority);
    if (others.every(isPlaceholder)) {
      for (const step of others)
        await this.removeStep(context, extension, step.priority).catch(() => undefined);
    }
  }

  private isMine(step: DialplanStepInfo, entry: DialplanEntry): boolean {
    return (
      step.application.toLowerCase() === entry.application.toLowerCase() &&
      step.appData === entry.applicationData
    );
  }

  private async removeStep(context: string, extension: string, priority: number): Promise<void> {
    try {
      await this.ami.action({
        Action: 'DialplanExtensionRemove',
        Context: context,
        Extension: extension,
        Priority: priority,
      });
    } catch (error) {
      // Already gone (an Asterisk restart forgets AMI-added steps): that is what we wanted.
      if (!(error instanceof AmiActionError) || (await this.isTaken(context, extension, priority)))
        throw error;
    }
  }

  /** Steps of `extension` in `context`, from ShowDialPlan; none when the context does not exist. */
  async steps(context: string, extension: string): Promise<DialplanStepInfo[]> {
    try {
      const res = await this.ami.action({ Action: 'ShowDialPlan', Context: context, Extension: extension });
      return res.events
        .filter((e) => e.name === 'ListDialplan' && String(e.fields.Extension) === extension)
        .map((e) => ({
          priority: Number(e.fields.Priority),
          application: String(e.fields.Application ?? ''),
          appData: String(e.fields.AppData ?? ''),
        }))
        .filter((step) => Number.isInteger(step.priority) && step.priority > 0);
    } catch (error) {
      // ShowDialPlan answers Error when the context or extension does not exist yet.
      if (error instanceof AmiActionError) return [];
      throw error;
    }
  }

  private async isTaken(context: string, extension: string, priority: number): Promise<boolean> {
    return (await this.steps(context, extension)).some((step) => step.priority === priority);
  }
}

function key(entry: DialplanEntry): string {
  return `${entry.context}\u0000${entry.extension}\u0000${entry.priority}`;
}
