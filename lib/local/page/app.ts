/** The local page: upload a pose through the same API and presigned PUT that apps use, then show it. */
import { uploadPose, UploadPoseError } from '../../client/upload-pose.ts';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const drop = $<HTMLDivElement>('drop');
const fileInput = $<HTMLInputElement>('file');
const progress = $<HTMLProgressElement>('progress');
const statusLine = $<HTMLParagraphElement>('status');
const result = $<HTMLDivElement>('result');
const deleteButton = $<HTMLButtonElement>('delete');
const generationInput = $<HTMLInputElement>('generationId');
const poseInput = $<HTMLInputElement>('poseId');
const tokenInput = $<HTMLInputElement>('token');

const randomId = (prefix: string) => `${prefix}_${crypto.randomUUID().slice(0, 8)}`;
generationInput.value = randomId('gen');
poseInput.value = randomId('pose');

function say(text: string, isError = false): void {
  statusLine.textContent = text;
  statusLine.classList.toggle('error', isError);
}

const authHeaders = (): Record<string, string> => (tokenInput.value ? { Authorization: `Bearer ${tokenInput.value}` } : {});

async function upload(file: File): Promise<void> {
  const ids = { generationId: generationInput.value, poseId: poseInput.value };
  result.hidden = true;
  deleteButton.hidden = true;
  progress.hidden = false;
  progress.value = 0;
  say(`Uploading ${file.name} (${Math.round(file.size / 1024)} KB)…`);
  try {
    const pose = await uploadPose(file, {
      ...ids,
      ...(tokenInput.value && { token: tokenInput.value }),
      onProgress: ({ phase, loaded, total }) => {
        progress.value = total > 0 ? loaded / total : 1;
        if (phase === 'processing') say('Uploaded; making the thumbnail…');
      },
    });
    if (pose.status === 'rejected') {
      say(`Rejected: ${pose.reason}`, true);
      deleteButton.hidden = false;
      return;
    }
    $<HTMLImageElement>('image').src = pose.imageUrl;
    $<HTMLImageElement>('thumbnail').src = pose.thumbnailUrl;
    $('imageUrl').textContent = pose.imageUrl;
    $('thumbnailUrl').textContent = pose.thumbnailUrl;
    result.hidden = false;
    deleteButton.hidden = false;
    say('Ready.');
  } catch (error) {
    say(error instanceof UploadPoseError ? `${error.message} (${error.code})` : String(error), true);
  } finally {
    progress.hidden = true;
  }
}

deleteButton.addEventListener('click', async () => {
  const url = `/poses/${encodeURIComponent(generationInput.value)}/${encodeURIComponent(poseInput.value)}`;
  const response = await fetch(url, { method: 'DELETE', headers: authHeaders() });
  if (response.status !== 204) return say(`Delete failed (HTTP ${response.status})`, true);
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
