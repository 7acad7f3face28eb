import { RoomEvent, type ConnectionState, type Room } from '@switchboard/client';
import { useRoomOrContext } from './RoomProvider.js';
import { useRoomValue } from './useRoomValue.js';

const EVENTS = [RoomEvent.ConnectionStateChanged] as const;

/** The room's connection state (connecting, connected, reconnecting, disconnected), re-rendering on each change. */
export function useConnectionState(room?: Room): ConnectionState {
  return useRoomValue(useRoomOrContext(room), EVENTS, (r) => r.state);
}
