/**
 * Payload schemas for every inbound message. The server validates at the boundary with
 * these before any handler runs; unknown keys are refused (strict objects) so that typos
 * and operator injection ($-keys) fail loudly instead of being ignored.
 */
import { z } from 'zod';

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
/** A JSON object of user data (participant metadata, producer app data). */
export type Metadata = { [key: string]: JsonValue };

/** Limits that bound memory per message; documented in the README. */
export const Limits = {
  idLength: 128,
  nameLength: 256,
  metadataBytes: 4096,
  metadataDepth: 6,
  sdpBytes: 128 * 1024,
  candidateLength: 1024,
  reasonLength: 256,
} as const;

const encoder = new TextEncoder();
const utf8Length = (text: string): number => encoder.encode(text).length;

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/** Walks a parsed JSON value; returns a problem or null. Keys starting with `$` or holding `.` are refused (MongoDB operators and paths). */
function jsonProblem(value: unknown, depth: number, maxDepth: number): string | null {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return null;
  if (typeof value === 'number') return Number.isFinite(value) ? null : 'numbers must be finite';
  if (depth >= maxDepth) return `nested deeper than ${maxDepth} levels`;
  if (Array.isArray(value)) {
    for (const item of value) {
      const problem = jsonProblem(item, depth + 1, maxDepth);
      if (problem) return problem;
    }
    return null;
  }
  if (typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    for (const [key, item] of Object.entries(value)) {
      if (key.startsWith('$') || key.includes('.') || key.includes('\0') || FORBIDDEN_KEYS.has(key)) {
        return `key "${key.slice(0, 40)}" is not allowed (no $-prefix, dots, NUL or prototype keys)`;
      }
      const problem = jsonProblem(item, depth + 1, maxDepth);
      if (problem) return problem;
    }
    return null;
  }
  return 'only JSON values are allowed';
}

/**
 * A JSON object of bounded size and depth with safe keys (user metadata). Checked on the raw
 * value: copying into a record first would silently turn a "__proto__" key into a prototype.
 */
export function safeJsonObject<Output extends object = Metadata>(
  maxBytes: number = Limits.metadataBytes,
  maxDepth: number = Limits.metadataDepth,
) {
  return z
    .custom<Output>((value) => typeof value === 'object' && value !== null && !Array.isArray(value), 'must be a JSON object')
    .superRefine((value, ctx) => {
      const problem = jsonProblem(value, 0, maxDepth);
      if (problem) {
        ctx.addIssue({ code: 'custom', message: problem });
        return;
      }
      if (utf8Length(JSON.stringify(value)) > maxBytes) {
        ctx.addIssue({ code: 'custom', message: `must serialize to at most ${maxBytes} bytes` });
      }
    });
}

/** Identifiers chosen by integrators: room ids, user ids. Printable, no `$` at the start. */
export const externalId = z
  .string()
  .min(1)
  .max(Limits.idLength)
  .regex(/^[A-Za-z0-9_][A-Za-z0-9_.:@-]*$/, 'letters, digits and _ . : @ - only, not starting with a symbol');

export const displayName = z.string().min(1).max(Limits.nameLength);

/** Where a published track comes from (LiveKit's Track.Source): decides grants, policy and how it is sent. */
export const TRACK_SOURCES = ['camera', 'microphone', 'screen', 'screen_audio'] as const;
export const trackSource = z.enum(TRACK_SOURCES);
/** The media kind each source is: a camera or screen is video, a microphone or screen audio is audio. */
export const SOURCE_KIND = { camera: 'video', microphone: 'audio', screen: 'video', screen_audio: 'audio' } as const;

/** A list of sources, each at most once (the canPublishSources grant). */
export const trackSourceList = z
  .array(trackSource)
  .max(TRACK_SOURCES.length)
  .refine((list) => new Set(list).size === list.length, { message: 'each source at most once' });

/**
 * Some grants (token claims, role presets, API requests); unnamed booleans are false, an
 * absent canPublishSources allows every source.
 */
export const partialGrants = z.strictObject({
  roomJoin: z.boolean().optional(),
  canPublish: z.boolean().optional(),
  canSubscribe: z.boolean().optional(),
  canPublishData: z.boolean().optional(),
  roomAdmin: z.boolean().optional(),
  hidden: z.boolean().optional(),
  canUpdateOwnMetadata: z.boolean().optional(),
  canPublishSources: trackSourceList.optional(),
});

export const sessionDescription = z
  .strictObject({
    type: z.enum(['offer', 'answer', 'pranswer', 'rollback']),
    sdp: z.string().max(Limits.sdpBytes).optional(),
  })
  .refine((d) => d.type === 'rollback' || (typeof d.sdp === 'string' && d.sdp.length > 0), {
    message: 'sdp is required unless type is rollback',
  });

export const iceCandidate = z.strictObject({
  // "" is the end-of-candidates marker.
  candidate: z.string().max(Limits.candidateLength),
  sdpMid: z.string().max(64).nullable().optional(),
  sdpMLineIndex: z.number().int().min(0).max(1024).nullable().optional(),
  usernameFragment: z.string().max(256).nullable().optional(),
});

/** The handshake auth payload of an anonymous/demo join (ANONYMOUS_ROOMS on): no token. */
export const anonymousAuth = z.strictObject({ room: externalId, name: displayName });

/** A server-assigned peer id (`p_` and 12 base64url characters). */
export const peerId = z.string().regex(/^p_[A-Za-z0-9_-]{12}$/, 'not a peer id');

export const joinPayload = z
  .strictObject({
    metadata: safeJsonObject().optional(),
    /**
     * The peer id this client had in the room before its connection was replaced (a cluster
     * move, a reconnect): the server gives it back when the room still holds that place for
     * the same user, so the others keep their links and see no leave or join.
     */
    resume: z.strictObject({ peer_id: peerId }).optional(),
  })
  .optional();

export const signalPayload = z
  .strictObject({
    to: z.string().min(1).max(Limits.idLength),
    description: sessionDescription.optional(),
    candidate: iceCandidate.optional(),
  })
  .refine((s) => (s.description === undefined) !== (s.candidate === undefined), {
    message: 'exactly one of description or candidate is required',
  });

export const emptyPayload = z.strictObject({}).optional();

export const updateMetadataPayload = z.strictObject({ metadata: safeJsonObject() });

const finite = (min: number, max: number) => z.number().min(min).max(max).optional();

export const statsPayload = z.strictObject({
  links: z
    .array(
      z.strictObject({
        peer_id: z.string().min(1).max(Limits.idLength),
        rtt_ms: finite(0, 600_000),
        packet_loss: finite(0, 1),
        jitter_ms: finite(0, 600_000),
        bitrate_in_kbps: finite(0, 10_000_000),
        bitrate_out_kbps: finite(0, 10_000_000),
        candidate_type: z.enum(['host', 'srflx', 'prflx', 'relay']).optional(),
      }),
    )
    .max(256),
  migration: z
    .strictObject({
      to: z.enum(['mesh', 'sfu']),
      duration_ms: z.number().min(0).max(600_000),
      media_gap_ms: z.number().min(0).max(600_000),
    })
    .optional(),
});

// SFU payloads. mediasoup validates RTP details itself; these bound shapes and sizes and refuse
// operator keys, so nothing unbounded or unexpected reaches the worker.
const mediasoupId = z.string().min(1).max(64);
/** mediasoup's own parameter objects: JSON checked like metadata, typed as mediasoup declares them. */
const boundedRecord = (maxBytes: number) => safeJsonObject<Record<string, unknown>>(maxBytes, 8);

const dtlsParameters = z.strictObject({
  role: z.enum(['auto', 'client', 'server']).optional(),
  fingerprints: z
    .array(
      z.strictObject({
        algorithm: z.enum(['sha-1', 'sha-224', 'sha-256', 'sha-384', 'sha-512']),
        value: z.string().regex(/^[0-9A-Fa-f:]{8,200}$/),
      }),
    )
    .min(1)
    .max(8),
});

const rtpCodec = z.looseObject({
  mimeType: z.string().regex(/^(audio|video)\/[A-Za-z0-9._-]{1,40}$/),
  payloadType: z.number().int().min(0).max(127),
  clockRate: z.number().int().min(1).max(1_000_000),
  channels: z.number().int().min(1).max(8).optional(),
  parameters: boundedRecord(2048).optional(),
  rtcpFeedback: z
    .array(z.strictObject({ type: z.string().max(32), parameter: z.string().max(32).optional() }))
    .max(16)
    .optional(),
});

export const rtpParameters = z.strictObject({
  mid: z.string().max(32).optional(),
  /** Sent by mediasoup-client >= 3.17 ("<stream id> <track id>"). */
  msid: z.string().max(256).optional(),
  codecs: z.array(rtpCodec).min(1).max(16),
  headerExtensions: z
    .array(z.looseObject({ uri: z.string().max(256), id: z.number().int().min(1).max(255) }))
    .max(24)
    .optional(),
  encodings: z.array(boundedRecord(1024)).max(8).optional(),
  rtcp: z
    .strictObject({ cname: z.string().max(128).optional(), reducedSize: z.boolean().optional(), mux: z.boolean().optional() })
    .optional(),
});

export const rtpCapabilities = z.looseObject({
  codecs: z
    .array(z.looseObject({ mimeType: z.string().max(64), kind: z.enum(['audio', 'video']), clockRate: z.number().int() }))
    .max(64)
    .optional(),
  headerExtensions: z
    .array(
      z.strictObject({
        kind: z.enum(['audio', 'video']),
        uri: z.string().max(256),
        preferredId: z.number().int().min(1).max(255),
        preferredEncrypt: z.boolean().optional(),
        direction: z.enum(['sendrecv', 'sendonly', 'recvonly', 'inactive']).optional(),
      }),
    )
    .max(64)
    .optional(),
});

export const sctpStreamParameters = z.strictObject({
  streamId: z.number().int().min(0).max(65534),
  ordered: z.boolean().optional(),
  maxPacketLifeTime: z.number().int().min(0).max(65535).optional(),
  maxRetransmits: z.number().int().min(0).max(65535).optional(),
});

export const sfuCreateTransportPayload = z.strictObject({ direction: z.enum(['send', 'recv']) });
export const sfuConnectTransportPayload = z.strictObject({ transport_id: mediasoupId, dtls_parameters: dtlsParameters });
/** A video size in pixels (a captured track's, or the size a subscriber shows a track at). */
const videoSize = z.strictObject({ width: z.number().int().min(0).max(16384), height: z.number().int().min(0).max(16384) });

export const sfuProducePayload = z
  .strictObject({
    transport_id: mediasoupId,
    kind: z.enum(['audio', 'video']),
    rtp_parameters: rtpParameters,
    app_data: safeJsonObject(512).optional(),
    /** The captured size of a video track: the size of its top simulcast layer, from which the SFU reckons the others. */
    video_size: videoSize.optional(),
  })
  // mediasoup takes an audio producer with video codecs (matched by mime type alone): that would
  // carry video under an audio source (a guide's `microphone`) past the canPublishSources check.
  .refine((p) => p.rtp_parameters.codecs.every((codec) => codec.mimeType.startsWith(`${p.kind}/`)), {
    message: 'every codec must be of the producer kind (audio/... or video/...)',
    path: ['rtp_parameters', 'codecs'],
  });
export const sfuProduceDataPayload = z.strictObject({
  transport_id: mediasoupId,
  sctp_stream_parameters: sctpStreamParameters,
  label: z.string().max(64).optional(),
  protocol: z.string().max(64).optional(),
});
export const sfuConsumePayload = z.strictObject({ transport_id: mediasoupId, producer_id: mediasoupId, rtp_capabilities: rtpCapabilities });
export const sfuConsumeDataPayload = z.strictObject({ transport_id: mediasoupId, producer_id: mediasoupId });
export const sfuConsumerPayload = z.strictObject({ consumer_id: mediasoupId });
export const sfuProducerPayload = z.strictObject({ producer_id: mediasoupId });
/**
 * How a subscriber shows one of its video consumers (adaptive stream): the largest size it
 * renders the track at, in device pixels, and whether any of it is visible. The SFU picks the
 * simulcast layer from the size and pauses the consumer while it is not visible.
 */
export const sfuConsumerPreferencesPayload = z.strictObject({
  consumer_id: mediasoupId,
  visible: z.boolean(),
  width: videoSize.shape.width,
  height: videoSize.shape.height,
});

export const adminKickPayload = z.strictObject({
  peer_id: z.string().min(1).max(Limits.idLength),
  reason: z.string().max(Limits.reasonLength).optional(),
});

export const adminLockPayload = z.strictObject({ locked: z.boolean() });

export const adminMutePayload = z.strictObject({
  peer_id: z.string().min(1).max(Limits.idLength),
  kind: z.enum(['audio', 'video']),
  muted: z.boolean(),
});

/** A participant's own mute of its audio or video (its SDK disabled those tracks). */
export const mutePayload = z.strictObject({
  kind: z.enum(['audio', 'video']),
  muted: z.boolean(),
});

/**
 * The id of a published track or stream: the publisher's MediaStreamTrack.id or MediaStream.id
 * (UUIDs in browsers, `{uuid}` in Firefox; libwebrtc's random ids use + and /).
 */
export const trackId = z
  .string()
  .min(1)
  .max(Limits.idLength)
  .regex(/^[A-Za-z0-9_{}.:+/=-]+$/, 'letters, digits and _ { } . : + / = - only');

/** A track this participant publishes, announced before its media is sent (both topologies). */
export const publishTrackPayload = z
  .strictObject({
    track_id: trackId,
    kind: z.enum(['audio', 'video']),
    source: trackSource,
    /** The MediaStream.id the track is sent with (a mesh receiver sees it as the track's stream): how it finds the announcement. */
    stream_id: trackId.optional(),
  })
  .refine((t) => SOURCE_KIND[t.source] === t.kind, {
    message: 'source does not match kind (camera/screen: video; microphone/screen_audio: audio)',
    path: ['source'],
  });

export const unpublishTrackPayload = z.strictObject({ track_id: trackId });

/** One schema per client event; the gateway refuses to register a handler without one. */
export const clientEventSchemas = {
  join: joinPayload,
  signal: signalPayload,
  leave: emptyPayload,
  update_metadata: updateMetadataPayload,
  stats: statsPayload,
  mute: mutePayload,
  publish_track: publishTrackPayload,
  unpublish_track: unpublishTrackPayload,
  'sfu:create_transport': sfuCreateTransportPayload,
  'sfu:connect_transport': sfuConnectTransportPayload,
  'sfu:produce': sfuProducePayload,
  'sfu:produce_data': sfuProduceDataPayload,
  'sfu:consume': sfuConsumePayload,
  'sfu:consume_data': sfuConsumeDataPayload,
  'sfu:resume': sfuConsumerPayload,
  'sfu:close_producer': sfuProducerPayload,
  'sfu:consumer_preferences': sfuConsumerPreferencesPayload,
  'admin:kick': adminKickPayload,
  'admin:lock': adminLockPayload,
  'admin:mute': adminMutePayload,
} as const;

/** Formats zod issues as one short line for the error message (never echoes values). */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => `${issue.path.length ? issue.path.join('.') : 'payload'}: ${issue.message}`)
    .join('; ');
}
