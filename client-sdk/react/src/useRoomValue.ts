import type { Room, RoomEvent, RoomEventCallbacks } from '@switchboard/client';
import { useEffect, useState } from 'react';

/**
 * A value read from the Room, read again (and re-rendered) whenever one of `events` fires. Read
 * once more when subscribing: the room may have changed between render and effect.
 */
export function useRoomValue<T>(room: Room, events: readonly RoomEvent[], read: (room: Room) => T, deps: readonly unknown[] = []): T {
  const [value, setValue] = useState(() => read(room));
  const eventsKey = events.join(',');
  useEffect(() => {
    const update = () => setValue(read(room));
    update();
    const listener = update as RoomEventCallbacks[keyof RoomEventCallbacks];
    for (const event of events) room.on(event, listener);
    return () => {
      for (const event of events) room.off(event, listener);
    };
    // `read` is a fresh closure each render: what it depends on is the room, the events and `deps`.
  }, [room, eventsKey, ...deps]);
  return value;
}
