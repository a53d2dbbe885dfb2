/**
 * A tiny typed client for app developers, in browsers and Node (no dependencies): ask for an upload URL,
 * PUT the file straight to the store with progress, then wait until the pose is ready (or rejected).
 *
 *   const pose = await uploadPose(file, { generationId, poseId, apiUrl: 'https://api.example.com', token })
 *   if (pose.status === 'ready') show(pose.thumbnailUrl)
 */
import { CONTENT_TYPES, sniffFormat } from '../image-format.ts';
import type { PoseStatus } from '../pose-uploads.ts';

export interface UploadPoseOptions {
  generationId: string;
  poseId: string;
  poseLibraryId?: string;
  /** Base URL of the API (empty: same origin). */
  apiUrl?: string;
  /** API_TOKEN, when the API requires one. */
  token?: string;
  /** Called as bytes go out (browsers report real progress; Node's fetch reports start and end). */
  onProgress?: (progress: { phase: 'uploading' | 'processing'; loaded: number; total: number }) => void;
  signal?: AbortSignal;
  /** How long to wait for the thumbnail after the upload (default 60 s). */
  timeoutMs?: number;
  pollIntervalMs?: number;
}

/** The pose's status once settled (the API's `GET /poses/{generationId}/{poseId}`); a type only, so no runtime import. */
export type PoseResult = Exclude<PoseStatus, { status: 'pending' }>;

/** A refusal or failure of the API or the upload, with the contract's error code. */
export class UploadPoseError extends Error {
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = 'UploadPoseError';
    this.status = status;
    this.code = code;
  }
}

interface UploadTicket {
  uploadUrl: string;
  method: 'PUT';
  headers: Record<string, string>;
}

export async function uploadPose(file: Blob | Uint8Array, options: UploadPoseOptions): Promise<PoseResult> {
  const body = file instanceof Uint8Array ? new Blob([file as Uint8Array<ArrayBuffer>]) : file;
  const head = new Uint8Array(await body.slice(0, 16).arrayBuffer());
  const format = sniffFormat(head);
  const contentType = format ? CONTENT_TYPES[format] : body.type || 'application/octet-stream';
  const api = (options.apiUrl ?? '').replace(/\/+$/, '');
  const auth: Record<string, string> = options.token ? { Authorization: `Bearer ${options.token}` } : {};
  const { generationId, poseId } = options;

  const ticket = (await call(`${api}/uploads`, {
    method: 'POST',
    headers: { ...auth, 'Content-Type': 'application/json' },
    body: JSON.stringify({
      generationId,
      poseId,
      contentType,
      contentLength: body.size,
      ...(options.poseLibraryId !== undefined && { poseLibraryId: options.poseLibraryId }),
    }),
    ...(options.signal && { signal: options.signal }),
  })) as UploadTicket;

  await put(ticket, body, options);
  options.onProgress?.({ phase: 'processing', loaded: body.size, total: body.size });

  const statusUrl = `${api}/poses/${encodeURIComponent(generationId)}/${encodeURIComponent(poseId)}`;
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  for (;;) {
    const status = (await call(statusUrl, { headers: auth, ...(options.signal && { signal: options.signal }) })) as PoseResult | { status: 'pending' };
    if (status.status !== 'pending') return status;
    if (Date.now() > deadline) throw new UploadPoseError(0, 'timeout', 'The pose was not processed in time');
    await new Promise((resolve) => setTimeout(resolve, options.pollIntervalMs ?? 300));
  }
}

async function call(url: string, init: RequestInit): Promise<unknown> {
  const response = await fetch(url, init);
  const payload: unknown = await response.json().catch(() => undefined);
  if (response.ok) return payload;
  const error = (payload as { error?: { code?: string; message?: string } } | undefined)?.error;
  throw new UploadPoseError(response.status, error?.code ?? 'http_error', error?.message ?? `HTTP ${response.status}`);
}

/** The PUT to the presigned URL: XMLHttpRequest where it exists (for upload progress), fetch elsewhere. */
function put(ticket: UploadTicket, body: Blob, options: UploadPoseOptions): Promise<void> {
  const total = body.size;
  const refused = (status: number) => new UploadPoseError(status, 'upload_refused', `The store refused the upload (HTTP ${status})`);
  if (typeof XMLHttpRequest === 'undefined') {
    options.onProgress?.({ phase: 'uploading', loaded: 0, total });
    return fetch(ticket.uploadUrl, {
      method: ticket.method,
      headers: ticket.headers,
      body,
      ...(options.signal && { signal: options.signal }),
    }).then(async (response) => {
      await response.body?.cancel();
      if (!response.ok) throw refused(response.status);
      options.onProgress?.({ phase: 'uploading', loaded: total, total });
    });
  }
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open(ticket.method, ticket.uploadUrl);
    for (const [name, value] of Object.entries(ticket.headers)) {
      if (name.toLowerCase() !== 'content-length') request.setRequestHeader(name, value); // the browser sets it
    }
    request.upload.onprogress = (event) => options.onProgress?.({ phase: 'uploading', loaded: event.loaded, total });
    request.onload = () => (request.status >= 200 && request.status < 300 ? resolve() : reject(refused(request.status)));
    request.onerror = () => reject(new UploadPoseError(0, 'network_error', 'The upload failed (network error)'));
    request.onabort = () => reject(new UploadPoseError(0, 'aborted', 'The upload was aborted'));
    options.signal?.addEventListener('abort', () => request.abort(), { once: true });
    request.send(body);
  });
}
