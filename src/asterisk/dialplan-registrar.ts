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

/** How many times to look again when another instance takes the priority we chose meanwhile. */
const MAX_ATTEMPTS = 5;

/**
 * Adds and removes dialplan steps over AMI, stacking behind other instances: if priority 1 of an
 * extension belongs to someone else, this instance takes the next free priority, so several
 * processes can serve one number (the first one over capacity continues to the next). It removes
 * exactly what it added, never anyone else's steps.
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
      const taken = await this.takenPriorities(context, extension);
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

  /** Forgets everything without touching Asterisk (after a restart wiped the in-memory dialplan). */
  forgetAll(): DialplanEntry[] {
    const entries = this.entries();
    this.added.clear();
    return entries;
  }

  private async removeEntry(entry: DialplanEntry): Promise<void> {
    try {
      await this.ami.action({
        Action: 'DialplanExtensionRemove',
        Context: entry.context,
        Extension: entry.extension,
        Priority: entry.priority,
      });
    } catch (error) {
      // Already gone (an Asterisk restart forgets AMI-added steps): that is what we wanted.
      if (
        !(error instanceof AmiActionError) ||
        (await this.isTaken(entry.context, entry.extension, entry.priority))
      )
        throw error;
    }
    this.added.delete(key(entry));
  }

  /** Priorities of `extension` in `context`, from ShowDialPlan; none when the context does not exist. */
  private async takenPriorities(context: string, extension: string): Promise<number[]> {
    try {
      const res = await this.ami.action({ Action: 'ShowDialPlan', Context: context, Extension: extension });
      return res.events
        .filter((e) => e.name === 'ListDialplan' && String(e.fields.Extension) === extension)
        .map((e) => Number(e.fields.Priority))
        .filter((p) => Number.isInteger(p) && p > 0);
    } catch (error) {
      // ShowDialPlan answers Error when the context or extension does not exist yet.
      if (error instanceof AmiActionError) return [];
      throw error;
    }
  }

  private async isTaken(context: string, extension: string, priority: number): Promise<boolean> {
    return (await this.takenPriorities(context, extension)).includes(priority);
  }
}

function key(entry: DialplanEntry): string {
  return `${entry.context}\u0000${entry.extension}\u0000${entry.priority}`;
}
