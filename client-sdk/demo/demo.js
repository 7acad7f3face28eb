// Demo of the Switchboard SDK: join a room with camera and microphone, see everyone, chat.
// Uses @switchboard/client as packaged (the package's ESM, bundled with its dependencies by the
// server's build: mediasoup-client loads only if the room goes to the SFU) and the dev-only
// token route.
import { Room, RoomEvent, ConnectionState, attachTrack, detachTrack } from '/sdk/esm/switchboard.js';

{
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  let room = null;
  let localStream = null;
  let screenStream = null;
  // One identity per page load, so a reconnect (which fetches a fresh token) is the same participant.
  const userId = `${Math.random().toString(36).slice(2, 10)}`;

  $('name').value = params.get('name') || `guest-${Math.random().toString(36).slice(2, 6)}`;
  if (params.get('room')) $('room').value = params.get('room');

  function showError(error) {
    $('error').textContent = error ? `${error.code || 'error'}: ${error.message || error}` : '';
  }

  function setMode(mode) {
    const badge = $('mode');
    badge.dataset.mode = mode;
    badge.textContent = mode === 'sfu' ? 'SFU' : 'mesh';
  }

  function renderParticipants() {
    const list = $('participants');
    list.replaceChildren();
    const me = document.createElement('li');
    me.textContent = `${room.localParticipant.name} (you)${qualityLabel(room.localParticipant)}`;
    me.dataset.quality = room.localParticipant.connectionQuality;
    me.classList.toggle('speaking', room.localParticipant.isSpeaking);
    list.append(me);
    for (const p of room.participants.values()) {
      const li = document.createElement('li');
      const sharing = [...p.trackPublications.values()].some((t) => t.source === 'screen');
      const off = [p.selfMuted.audio ? 'mic off' : '', p.selfMuted.video ? 'camera off' : '', sharing ? 'sharing screen' : ''].filter(
        Boolean,
      );
      li.textContent = `${p.name || p.identity}${off.length ? ` (${off.join(', ')})` : ''}${qualityLabel(p)}`;
      li.dataset.identity = p.identity;
      li.dataset.quality = p.connectionQuality;
      li.classList.toggle('speaking', p.isSpeaking);
      list.append(li);
    }
  }

  /** ' · quality' once measured. */
  function qualityLabel(participant) {
    return participant.connectionQuality === 'unknown' ? '' : ` · ${participant.connectionQuality}`;
  }

  /** The speakers' tiles are highlighted (the loudest gets .speaking.loudest), and every caption says its participant's quality. */
  function renderSpeakers() {
    for (const tile of document.querySelectorAll('.tile')) markSpeaker(tile);
    renderParticipants();
  }

  /** Highlights a tile whose participant is among the active speakers (also a tile made after the speakers last changed). */
  function markSpeaker(tile) {
    const identity = tile.classList.contains('local') ? room.localParticipant.identity : tile.dataset.identity;
    const index = room.activeSpeakers.findIndex((p) => p.identity === identity);
    tile.classList.toggle('speaking', index >= 0);
    tile.classList.toggle('loudest', index === 0);
  }

  function renderQuality(quality, participant) {
    const identity = participant.identity;
    for (const tile of document.querySelectorAll('.tile')) {
      const mine = tile.classList.contains('local') ? identity === room.localParticipant.identity : tile.dataset.identity === identity;
      if (mine) tile.dataset.quality = quality;
    }
    renderParticipants();
  }

  /** A participant's tile: one for its camera and microphone, one for its screen share (and its audio). */
  function tileFor(participant, screen = false) {
    const selector = `.tile[data-identity="${CSS.escape(participant.identity)}"]${screen ? '.screen' : ':not(.screen)'}`;
    let tile = document.querySelector(selector);
    if (!tile) {
      tile = document.createElement('figure');
      tile.className = screen ? 'tile remote screen' : 'tile remote';
      tile.dataset.identity = participant.identity;
      // Video and audio are attached with attachTrack (the video through the SDK's adaptive stream).
      const video = document.createElement('video');
      const audio = document.createElement('audio');
      const caption = document.createElement('figcaption');
      caption.textContent = `${participant.name || participant.identity}${screen ? ' (screen)' : ''}`;
      if (participant.connectionQuality !== 'unknown') tile.dataset.quality = participant.connectionQuality;
      tile.append(video, audio, caption);
      markSpeaker(tile);
      $('videos').append(tile);
    }
    return tile;
  }

  function addChat(from, text) {
    const li = document.createElement('li');
    li.textContent = `${from}: ${text}`;
    $('chat').append(li);
    li.scrollIntoView({ block: 'nearest' });
  }

  async function fetchToken(roomId, name) {
    const response = await fetch('/dev/token', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        room: roomId,
        name,
        user: `${name.replace(/[^A-Za-z0-9_]/g, '').slice(0, 32) || 'guest'}-${userId}`,
        role: params.get('role') || 'guest',
      }),
    });
    const body = await response.json();
    if (!response.ok) throw body.error;
    return body.token;
  }

  async function join(roomId, name) {
    showError(null);
    const token = await fetchToken(roomId, name);
    room = await Room.connect(location.origin, token, {
      forceRelay: params.get('relay') === '1',
      // ?stats=ms: how often the connection quality is measured (and reported).
      statsIntervalMs: Number(params.get('stats') || 3000),
      // ?simulcast=0 sends the camera as one layer on the SFU too (the benchmark's baseline).
      simulcast: params.get('simulcast') !== '0',
      tokenRefresher: () => fetchToken(roomId, name),
    });
    window.switchboardRoom = room;
    $('join-form').hidden = true;
    $('call').hidden = false;
    $('local-name').textContent = `${name} (you)`;
    setMode(room.mode);
    renderParticipants();

    room.on(RoomEvent.ParticipantJoined, renderParticipants);
    room.on(RoomEvent.ParticipantLeft, (p) => {
      for (const tile of document.querySelectorAll(`.tile[data-identity="${CSS.escape(p.identity)}"]`)) tile.remove();
      renderParticipants();
    });
    room.on(RoomEvent.ParticipantUpdated, renderParticipants);
    room.on(RoomEvent.TrackMuted, renderParticipants);
    room.on(RoomEvent.TrackUnmuted, renderParticipants);
    const isScreen = (publication) => publication.source === 'screen' || publication.source === 'screen_audio';
    // ?tiles=0 shows no remote video (tests and benchmarks that show it in tiles of their own).
    const showVideo = params.get('tiles') !== '0';
    room.on(RoomEvent.TrackSubscribed, (track, participant, _stream, publication) => {
      const tile = tileFor(participant, isScreen(publication));
      if (track.kind === 'audio') attachTrack(track, tile.querySelector('audio'));
      else if (showVideo) attachTrack(track, tile.querySelector('video'));
    });
    room.on(RoomEvent.TrackUnsubscribed, (track, participant) => {
      const screen = participant.trackInfo.get(track.id) ? isScreen(participant.trackInfo.get(track.id)) : false;
      const tile = tileFor(participant, screen);
      detachTrack(track);
      if (screen && !tile.querySelector('video').srcObject && !tile.querySelector('audio').srcObject) tile.remove();
    });
    room.on(RoomEvent.ActiveSpeakersChanged, renderSpeakers);
    room.on(RoomEvent.ConnectionQualityChanged, renderQuality);
    room.on(RoomEvent.TrackPublished, renderParticipants);
    room.on(RoomEvent.TrackUnpublished, renderParticipants);
    room.on(RoomEvent.Data, (payload, participant) => {
      if (payload && payload.type === 'chat') addChat(participant.name || participant.identity, String(payload.text));
    });
    room.on(RoomEvent.ModeChanged, setMode);
    room.on(RoomEvent.ConnectionStateChanged, (state) => {
      $('state').textContent = state === ConnectionState.Connected ? '' : state;
    });
    room.on(RoomEvent.Error, showError);

    const { canPublish, canPublishSources } = room.localParticipant.grants;
    const mayPublish = (source) => canPublish && (!canPublishSources || canPublishSources.includes(source));
    $('share-screen').hidden = !mayPublish('screen');
    // ?video=0 sends no camera; a token without the camera (a guide) sends its microphone only.
    const wantsVideo = mayPublish('camera') && params.get('video') !== '0';
    const wantsAudio = mayPublish('microphone') && params.get('audio') !== '0';
    if (wantsVideo || wantsAudio) {
      try {
        // ?res=320x240 picks a smaller camera size (many pages on one machine).
        const [width, height] = (params.get('res') || '640x480').split('x').map(Number);
        // ?rawaudio=1 turns the browser's audio processing (echo cancellation, noise suppression,
        // gain control) off: many pages on one machine spend a third of a core on it.
        // ?audio=0 sends video only.
        const audio = !wantsAudio
          ? false
          : params.get('rawaudio') === '1'
            ? { echoCancellation: false, noiseSuppression: false, autoGainControl: false }
            : true;
        // ?fps=5 picks a lower camera frame rate (15 by default).
        const video = wantsVideo ? { width, height, frameRate: Number(params.get('fps') || 15) } : false;
        localStream = await navigator.mediaDevices.getUserMedia({ audio, video });
        $('local-video').srcObject = localStream;
        await room.publish(localStream);
      } catch (error) {
        showError(error);
      }
    }
  }

  $('join-form').addEventListener('submit', (event) => {
    event.preventDefault();
    join($('room').value, $('name').value).catch(showError);
  });
  $('chat-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const text = $('chat-input').value.trim();
    if (!text || !room) return;
    room.send({ type: 'chat', text });
    addChat('you', text);
    $('chat-input').value = '';
  });
  // The SDK mutes our tracks (and pauses them on the SFU) and tells the others (TrackMuted);
  // turning on a microphone or camera that was never captured captures it.
  $('mute-audio').addEventListener('click', async () => {
    if (!room) return;
    await room.setMicrophoneEnabled(!room.isMicrophoneEnabled).catch(showError);
    $('mute-audio').textContent = room.isMicrophoneEnabled ? 'Mute mic' : 'Unmute mic';
  });
  $('mute-video').addEventListener('click', async () => {
    if (!room) return;
    await room.setCameraEnabled(!room.isCameraEnabled).catch(showError);
    $('mute-video').textContent = room.isCameraEnabled ? 'Stop camera' : 'Start camera';
    if (room.cameraTrack && !localStream?.getVideoTracks().includes(room.cameraTrack))
      $('local-video').srcObject = new MediaStream([room.cameraTrack]);
  });
  // A screen share is its own track (source 'screen'): sent at full resolution, shown in its own tile.
  async function stopScreen() {
    const stream = screenStream;
    screenStream = null;
    document.querySelector('.tile.local-screen')?.remove();
    $('share-screen').textContent = 'Share screen';
    for (const track of stream?.getTracks() ?? []) {
      track.stop();
      await room?.unpublish(track).catch(showError);
    }
  }
  $('share-screen').addEventListener('click', async () => {
    if (!room) return;
    if (screenStream) return stopScreen();
    try {
      screenStream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: true });
      screenStream.getVideoTracks()[0]?.addEventListener('ended', stopScreen);
      await room.publish(screenStream, { source: 'screen' });
      $('share-screen').textContent = 'Stop sharing';
      // Our own share, as the others see it (its own tile).
      const tile = document.createElement('figure');
      tile.className = 'tile local-screen screen';
      const video = document.createElement('video');
      video.autoplay = true;
      video.muted = true;
      video.playsInline = true;
      video.srcObject = new MediaStream(screenStream.getVideoTracks());
      const caption = document.createElement('figcaption');
      caption.textContent = 'your screen';
      tile.append(video, caption);
      $('videos').append(tile);
    } catch (error) {
      showError(error);
      await stopScreen();
    }
  });
  $('leave').addEventListener('click', async () => {
    await room?.leave();
    for (const track of localStream?.getTracks() ?? []) track.stop();
    location.href = location.pathname;
  });

  if (params.get('room') && params.get('name')) join(params.get('room'), params.get('name')).catch(showError);
}
