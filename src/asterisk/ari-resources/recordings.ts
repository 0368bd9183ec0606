import { type AriRequestFn, seg } from '../ari-http.js';
import type { LiveRecording, StoredRecording } from '../ari-types.js';

/**
 * `/recordings`: live recordings (in progress) by name, and stored recordings (files on the
 * Asterisk host). Unknown names reject with {@link AriNotFoundError} (`Recording not found`).
 */
export class RecordingsResource {
  readonly #request: AriRequestFn;

  constructor(request: AriRequestFn) {
    this.#request = request;
  }

  /** Stored recordings, sorted by name. */
  listStored(): Promise<StoredRecording[]> {
    return this.#request('GET', '/recordings/stored');
  }

  /** One stored recording. */
  getStored(name: string): Promise<StoredRecording> {
    return this.#request('GET', `/recordings/stored/${seg(name)}`);
  }

  /** The recording's file (e.g. a RIFF WAV) as bytes. */
  getStoredFile(name: string): Promise<Buffer> {
    return this.#request('GET', `/recordings/stored/${seg(name)}/file`, { responseType: 'buffer' });
  }

  /** Deletes a stored recording. */
  deleteStored(name: string): Promise<void> {
    return this.#request('DELETE', `/recordings/stored/${seg(name)}`);
  }

  /** Copies a stored recording; an existing destination rejects with 409. */
  copyStored(name: string, destinationName: string): Promise<StoredRecording> {
    return this.#request('POST', `/recordings/stored/${seg(name)}/copy`, {
      query: { destinationRecordingName: destinationName },
    });
  }

  /** A live recording (state `recording`, `paused`…). */
  getLive(name: string): Promise<LiveRecording> {
    return this.#request('GET', `/recordings/live/${seg(name)}`);
  }

  /** Stops and keeps the recording; RecordingFinished follows. */
  stopLive(name: string): Promise<void> {
    return this.#request('POST', `/recordings/live/${seg(name)}/stop`);
  }

  /** Stops and discards the recording (RecordingFinished still follows, state `done`). */
  cancelLive(name: string): Promise<void> {
    return this.#request('DELETE', `/recordings/live/${seg(name)}`);
  }

  /** Pauses recording (no event). */
  pauseLive(name: string): Promise<void> {
    return this.#request('POST', `/recordings/live/${seg(name)}/pause`);
  }

  /** Resumes a paused recording (no event). */
  unpauseLive(name: string): Promise<void> {
    return this.#request('DELETE', `/recordings/live/${seg(name)}/pause`);
  }

  /** Records silence instead of the audio (no event). */
  muteLive(name: string): Promise<void> {
    return this.#request('POST', `/recordings/live/${seg(name)}/mute`);
  }

  /** Records the audio again (no event). */
  unmuteLive(name: string): Promise<void> {
    return this.#request('DELETE', `/recordings/live/${seg(name)}/mute`);
  }
}
