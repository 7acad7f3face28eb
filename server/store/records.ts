/**
 * What the stores share about records: the checks on values that reach keys and queries, and
 * the field-by-field copies of a tenant's nested values, so nothing undeclared (an API secret
 * spread in by mistake) is ever stored or returned.
 */
import type { RoomMode } from '../../protocol/events.js';
import { AppError } from '../errors.js';
import type { TenantLimits, WebhookConfig } from './Store.js';

/** The modes a session segment can be in. */
export const ROOM_MODES: readonly RoomMode[] = ['mesh', 'sfu'];

// ---- input checks: ids reach key names and queries only as strings (an operator object is refused) ----

export function str(value: unknown, what: string): string {
  if (typeof value !== 'string') throw new AppError('payload_invalid', `${what} must be a string`);
  return value;
}

export function date(value: unknown, what: string): Date {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) throw new AppError('payload_invalid', `${what} must be a valid Date`);
  return value;
}

export function roomMode(value: unknown): RoomMode {
  if (!ROOM_MODES.includes(value as RoomMode)) throw new AppError('payload_invalid', 'mode must be mesh or sfu');
  return value as RoomMode;
}

// ---- a tenant's nested values, copied field by field ----

export function limitsFields(limits: TenantLimits): { [K in keyof TenantLimits]: TenantLimits[K] } {
  return {
    max_rooms: limits.max_rooms,
    max_participants: limits.max_participants,
    mesh_threshold: limits.mesh_threshold,
    max_token_lifetime_s: limits.max_token_lifetime_s,
    auto_create_rooms: limits.auto_create_rooms,
    ...(limits.max_screen_shares !== undefined ? { max_screen_shares: limits.max_screen_shares } : {}),
  };
}

export function webhookFields(webhook: WebhookConfig | null | undefined): { url: string; secret: string } | null {
  return webhook ? { url: webhook.url, secret: webhook.secret } : null;
}
