import { RoomEvent, type DataInfo, type DataPayload, type RemoteParticipant, type Room } from '@switchboard/client';
import { useCallback, useEffect, useState } from 'react';
import { useRoomOrContext } from './RoomProvider.js';

/** A data message received (RoomEvent.Data). */
export interface ReceivedDataMessage {
  payload: DataPayload;
  from: RemoteParticipant;
  info: DataInfo;
  /** When it arrived (Date.now()). */
  receivedAt: number;
}

/** Which messages useDataMessages keeps. */
export interface UseDataMessagesOptions {
  /** Keep the last this many (default 100). */
  limit?: number;
  /** Pass a Room instead of the provider's. */
  room?: Room;
}

/** The data messages received since mounting, oldest first (the last `limit`). */
export function useDataMessages(options: UseDataMessagesOptions = {}): ReceivedDataMessage[] {
  const room = useRoomOrContext(options.room);
  const limit = options.limit ?? 100;
  const [messages, setMessages] = useState<ReceivedDataMessage[]>([]);
  useEffect(() => {
    const onData = (payload: DataPayload, from: RemoteParticipant, info: DataInfo) =>
      setMessages((previous) => [...previous, { payload, from, info, receivedAt: Date.now() }].slice(-limit));
    room.on(RoomEvent.Data, onData);
    return () => {
      room.off(RoomEvent.Data, onData);
    };
  }, [room, limit]);
  return messages;
}

/** room.send's options (reliable, to). */
export type SendDataOptions = NonNullable<Parameters<Room['send']>[1]>;

/** A function that sends data to the room (room.send), the same one across renders of the same room. */
export function useSendData(room?: Room): (payload: DataPayload, options?: SendDataOptions) => ReturnType<Room['send']> {
  const chosen = useRoomOrContext(room);
  return useCallback((payload: DataPayload, options?: SendDataOptions) => chosen.send(payload, options), [chosen]);
}
