/** The local page: upload a pose through the same API and presigned PUT that apps use, then show it. */
import { uploadPose, UploadPoseError, type PoseResult } from '../../client/upload-pose.ts';
import { formatBytes } from '../../operations/format.ts';

/**
 * A pose as the status route answers it: a rejection carries a sentence for people (`message`), a ready pose
 * its image's size and a `version` that changes with every publication. Servers before these fields send
 * neither: the page then shows what it has.
 */
type ShownPose = PoseResult & { message?: string; width?: number; height?: number; bytes?: number; version?: string };

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const main = document.querySelector('main')!;
const drop = $<HTMLDivElement>('drop');
const fileInput = $<HTMLInputElement>('file');
const progress = $<HTMLProgressElement>('progress');
const statusLine = $<HTMLParagraphElement>('status');
const result = $<HTMLDivElement>('result');
const deleteButton = $<HTMLButtonElement>('delete');
const generationInput = $<HTMLInputElement>('generationId');
const poseInput = $<HTMLInputElement>('poseId');
const tokenInput = $<HTMLInputElement>('token');

const uploadMaxBytes = Number(main.dataset.uploadMaxBytes);

const randomId = (prefix: string) => `${prefix}_${crypto.randomUUID().slice(0, 8)}`;
generationInput.value = randomId('gen');
poseInput.value = randomId('pose');

function say(text: string, isError = false): void {
  statusLine.textContent = text;
  statusLine.classList.toggle('error', isError);
}

const authHeaders = (): Record<string, string> => (tokenInput.value ? { Authorization: `Bearer ${tokenInput.value}` } : {});

/** Why the upload cannot start, in a sentence; undefined when it can. */
function refusalBeforeUpload(file: File): string | undefined {
  const rule = 'may hold only letters, digits, "-" and "_", 1 to 128 of them';
  if (!generationInput.checkValidity()) return `The generationId ${rule}.`;
  if (!poseInput.checkValidity()) return `The poseId ${rule}, and may not end in "_thumb".`;
  if (file.size === 0) return `${file.name} is empty.`;
  if (file.size > uploadMaxBytes) return `${file.name} is ${formatBytes(file.size)}, more than the ${formatBytes(uploadMaxBytes)} allowed.`;
  return undefined;
}

/** A refused request, in a sentence: the server's own message unless the page can say it better. */
function describeError(error: unknown): string {
  if (!(error instanceof UploadPoseError)) return `The upload failed: ${String(error)}`;
  if (error.code === 'unauthorized') return 'The server asks for an API token: enter it above and try again.';
  if (error.code === 'unsupported_type') return 'Only PNG, JPEG and WebP images can be uploaded.';
  return error.message;
}

/** A published URL as this page shows it: a new version is a new URL, so no cache can show the previous image. */
const versioned = (url: string, version: string | undefined) => (version === undefined ? url : `${url}${url.includes('?') ? '&' : '?'}v=${encodeURIComponent(version)}`);

function showReady(pose: Extract<ShownPose, { status: 'ready' }>): void {
  $<HTMLImageElement>('image').src = versioned(pose.imageUrl, pose.version);
  $<HTMLImageElement>('thumbnail').src = versioned(pose.thumbnailUrl, pose.version);
  $('imageUrl').textContent = pose.imageUrl;
  $('thumbnailUrl').textContent = pose.thumbnailUrl;
  const details = [
    pose.width !== undefined && pose.height !== undefined ? `${pose.width} × ${pose.height} px` : undefined,
    pose.bytes !== undefined ? formatBytes(pose.bytes) : undefined,
  ].filter((part) => part !== undefined);
  $('imageDetails').textContent = details.join(' · ');
  result.hidden = false;
  deleteButton.hidden = false;
  say('Ready.');
}

async function upload(file: File): Promise<void> {
  result.hidden = true;
  deleteButton.hidden = true;
  const refusal = refusalBeforeUpload(file);
  if (refusal) return say(refusal, true);
  progress.hidden = false;
  progress.value = 0;
  say(`Uploading ${file.name} (${formatBytes(file.size)})…`);
  try {
    const pose = (await uploadPose(file, {
      generationId: generationInput.value,
      poseId: poseInput.value,
      ...(tokenInput.value && { token: tokenInput.value }),
      onProgress: ({ phase, loaded, total }) => {
        progress.value = total > 0 ? loaded / total : 1;
        if (phase === 'processing') say('Uploaded; making the thumbnail…');
      },
    })) as ShownPose;
    // A rejected pose has nothing published to delete: another upload with the same ids replaces it.
    if (pose.status === 'rejected') return say(pose.message ?? `The image was rejected (${pose.reason}).`, true);
    showReady(pose);
  } catch (error) {
    say(describeError(error), true);
  } finally {
    progress.hidden = true;
  }
}

deleteButton.addEventListener('click', async () => {
  const url = `/poses/${encodeURIComponent(generationInput.value)}/${encodeURIComponent(poseInput.value)}`;
  const response = await fetch(url, { method: 'DELETE', headers: authHeaders() });
  if (response.status !== 204) return say(`The pose could not be deleted (HTTP ${response.status}); try again.`, true);
  result.hidden = true;
  deleteButton.hidden = true;
  say('Deleted.');
  poseInput.value = randomId('pose');
});

drop.addEventListener('click', () => fileInput.click());
drop.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' || event.key === ' ') fileInput.click();
});
fileInput.addEventListener('change', () => {
  const file = fileInput.files?.[0];
  if (file) void upload(file);
  fileInput.value = '';
});
drop.addEventListener('dragover', (event) => {
  event.preventDefault();
  drop.classList.add('over');
});
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (event) => {
  event.preventDefault();
  drop.classList.remove('over');
  const file = event.dataTransfer?.files[0];
  if (file) void upload(file);
});
