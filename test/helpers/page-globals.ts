import type { MigrationReport } from '../../client-sdk/src/MigrationMonitor.js';

/** What the e2e tests read and set inside demo pages (the demo exposes its Room as window.switchboardRoom). */
export interface PageRoom {
  mode: string;
  state: string;
  links: Map<string, unknown>;
  participants: Map<string, { identity: string; tracks: Map<string, MediaStreamTrack> }>;
  localParticipant: { id: string; identity: string; name: string };
  lastMigration: MigrationReport | null;
  getParticipantStats(): Promise<
    Map<string, { audioBytes: number; videoBytes: number; framesDecoded: number; framesByPath: { mesh: number; sfu: number } }>
  >;
  measureVideoGap(durationMs: number): Promise<number>;
  send(payload: unknown): void;
  on(event: string, listener: (...args: unknown[]) => void): void;
  publish(source: MediaStream): Promise<void>;
}

declare global {
  interface Window {
    switchboardRoom: PageRoom;
    received: Array<{ from: string; text: string }>;
    seqReceived: Record<string, number[]>;
    seqSent: number;
    seqTimer: ReturnType<typeof setInterval> | undefined;
  }
}
