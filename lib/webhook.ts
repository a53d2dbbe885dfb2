import { createHmac } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { WebhookConfig } from './config.ts';
import type { Logger } from './logger.ts';
import type { PoseRef } from './layout.ts';

/**
 * The optional ready/rejected notice: `POST READY_WEBHOOK_URL` with `X-Pose-Signature: sha256=<hex HMAC>`,
 * retried with backoff. Its failure is logged and never undoes a published pose.
 *
 * Each attempt's body carries `sentAt` (when it was sent, ISO 8601), inside what is signed, so that a receiver
 * can refuse a replayed notice (README: webhook). Redirects are never followed: a 3xx is a failed delivery,
 * retried like a 5xx, since following one would re-send the signed notice wherever the redirect points (307)
 * or turn it into a GET without its body (301, 302) that would count as delivered.
 */
export type WebhookNotice = PoseRef & { status: string; imageUrl?: string; thumbnailUrl?: string; reason?: string };

export interface WebhookNotifier {
  notify(notice: WebhookNotice): Promise<void>;
}

export const SIGNATURE_HEADER = 'X-Pose-Signature';

export function signWebhookBody(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

export interface WebhookOptions {
  attempts?: number;
  /** Delay before the 2nd attempt; doubled each time after. */
  backoffMs?: number;
  timeoutMs?: number;
}

export function createWebhookNotifier(config: WebhookConfig, logger: Logger, options: WebhookOptions = {}): WebhookNotifier {
  const { attempts = 4, backoffMs = 250, timeoutMs = 5000 } = options;
  return {
    async notify(notice) {
      let problem = '';
      for (let attempt = 1; attempt <= attempts; attempt++) {
        if (attempt > 1) await sleep(backoffMs * 2 ** (attempt - 2));
        const body = JSON.stringify({ ...notice, sentAt: new Date().toISOString() });
        const headers = { 'Content-Type': 'application/json', [SIGNATURE_HEADER]: signWebhookBody(config.secret, body) };
        try {
          const response = await fetch(config.url, { method: 'POST', headers, body, redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) });
          await response.body?.cancel();
          if (response.ok) return;
          const redirected = response.status >= 300 && response.status < 400;
          problem = redirected ? `HTTP ${response.status}, a redirect (not followed: set READY_WEBHOOK_URL to where it points)` : `HTTP ${response.status}`;
          if (!redirected && response.status < 500 && response.status !== 429) break; // the receiver refuses it: retrying will not help
        } catch (error) {
          problem = error instanceof Error ? error.name : 'network error';
        }
      }
      logger.warn(`[Storage] Webhook failed: ${problem}`, { generationId: notice.generationId, poseId: notice.poseId, status: notice.status });
    },
  };
}
