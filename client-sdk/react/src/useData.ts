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
  /** Only the messages sent with this topic (`send(payload, { topic })`); without it, every message. */
  topic?: string;
  /** Keep the last this many (default 100). */
  limit?: number;
  /** Pass a Room instead of the provider's. */
  room?: Room;
}

/** The data messages received since mounting (of `topic`, if given), oldest first (the last `limit`). */
export function useDataMessages(options: UseDataMessagesOptions = {}): ReceivedDataMessage[] {
  const room = useRoomOrContext(options.room);
  const { topic } = options;
  const limit = options.limit ?? 100;
  const [messages, setMessages] = useState<ReceivedDataMessage[]>([]);
  useEffect(() => {
    const onData = (payload: DataPayload, from: RemoteParticipant, info: DataInfo) => {
      if (topic !== undefined && info.topic !== topic) return;
      setMessages((previous) => [...previous, { payload, from, info, receivedAt: Date.now() }].slice(-limit));
    };
    room.on(RoomEvent.Data, onData);
    return () => {
      room.off(RoomEvent.Data, onData);
    };
  }, [room, limit, topic]);
  return messages;
}

/** room.send's options (reliable, to, topic). */
export type SendDataOptions = NonNullable<Parameters<Room['send']>[1]>;

/** room.send as a function, the same one across renders of the same room (its promise resolves once the message is handed to the transport). */
export function useSendData(room?: Room): (payload: DataPayload, options?: SendDataOptions) => ReturnType<Room['send']> {
  const chosen = useRoomOrContext(room);
  return useCallback((payload: DataPayload, options?: SendDataOptions) => chosen.send(payload, options), [chosen]);
}
