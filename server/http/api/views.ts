/** JSON representations of rooms, participants, sessions and usage (dates as ISO 8601). */
import type { RoomMode } from '../../../protocol/events.js';
import type { LiveRoomSummary, LiveRoomView, ParticipantView } from '../../cluster/LiveRooms.js';
import type { RoomManager } from '../../rooms/RoomManager.js';
import type { RoomRecord, SessionRecord, TenantRecord, UsageRow } from '../../store/Store.js';

/** Live participants; hidden ones (recorders) only when asked for. */
export function participantsOf(room: LiveRoomView | null, includeHidden: boolean): ParticipantView[] {
  if (!room) return [];
  return room.participants.filter((participant) => includeHidden || !participant.hidden);
}

/**
 * A room as the API shows it: the stored record (if any) merged with the live room (if any).
 * Limits and lock are effective values: the live room's config while it is live (admin:lock
 * included), else what a join would resolve from the room, the tenant and the server defaults.
 */
export function roomView(
  rooms: RoomManager,
  tenant: TenantRecord,
  record: RoomRecord | null,
  live: LiveRoomSummary | LiveRoomView | null,
  /** Adds the visible participants (of a LiveRoomView; a summary has none). */
  withParticipants: boolean,
): Record<string, unknown> {
  const config = live?.config ?? rooms.resolveConfig(tenant, record);
  const roomId = record?.room_id ?? live?.room_id ?? '';
  const view: Record<string, unknown> = {
    room_id: roomId,
    name: record?.name ?? roomId,
    description: record?.description ?? '',
    max_participants: config.max_participants,
    mesh_threshold: config.mesh_threshold,
    max_screen_shares: config.max_screen_shares ?? rooms.resolveConfig(tenant, record).max_screen_shares,
    mode: config.mode_policy,
    locked: config.locked,
    metadata: record?.metadata ?? {},
    expires_at: record?.expires_at?.toISOString() ?? null,
    created_at: record?.created_at.toISOString() ?? live?.created_at ?? new Date().toISOString(),
    updated_at: record?.updated_at.toISOString() ?? live?.created_at ?? new Date().toISOString(),
    stored: record !== null,
    live: live !== null,
    current_mode: live?.mode ?? null,
    num_participants: live?.num_participants ?? 0,
  };
  if (withParticipants) view.participants = live && 'participants' in live ? participantsOf(live, false) : [];
  return view;
}

export function sessionView(session: SessionRecord): Record<string, unknown> {
  return {
    session_id: session.session_id,
    room_id: session.room_id,
    user_id: session.user_id,
    jti: session.jti,
    peer_id: session.peer_id,
    address: session.address,
    connected_at: session.connected_at.toISOString(),
    disconnected_at: session.disconnected_at?.toISOString() ?? null,
    duration_ms: session.duration_ms,
    disconnect_reason: session.disconnect_reason,
    segments: session.segments.map((s) => ({ mode: s.mode, from: s.from.toISOString(), to: s.to?.toISOString() ?? null })),
  };
}

type ByMode = Record<RoomMode, number>;
const round = (minutes: number): number => Math.round(minutes * 1000) / 1000;

/** Participant-minutes in total, by mode, and by room (each with its own by-mode split). */
export function usageView(rows: UsageRow[], from: Date, to: Date): Record<string, unknown> {
  const byMode: ByMode = { mesh: 0, sfu: 0 };
  const byRoom = new Map<string, { room_id: string; participant_minutes: number; by_mode: ByMode }>();
  for (const row of rows) {
    byMode[row.mode] += row.participant_minutes;
    let room = byRoom.get(row.room_id);
    if (!room) {
      room = { room_id: row.room_id, participant_minutes: 0, by_mode: { mesh: 0, sfu: 0 } };
      byRoom.set(row.room_id, room);
    }
    room.participant_minutes += row.participant_minutes;
    room.by_mode[row.mode] += row.participant_minutes;
  }
  const total = byMode.mesh + byMode.sfu;
  return {
    from: from.toISOString(),
    to: to.toISOString(),
    participant_minutes: round(total),
    by_mode: { mesh: round(byMode.mesh), sfu: round(byMode.sfu) },
    by_room: [...byRoom.values()].map((r) => ({
      room_id: r.room_id,
      participant_minutes: round(r.participant_minutes),
      by_mode: { mesh: round(r.by_mode.mesh), sfu: round(r.by_mode.sfu) },
    })),
  };
}
