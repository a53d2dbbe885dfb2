/** The local page: upload a pose through the same API and presigned PUT that apps use, then show it. */
import { uploadPose, UploadPoseError, type PoseResult } from '../../client/upload-pose.ts';
import { thumbHashToDataURL } from 'thumbhash';
import { formatBytes } from '../../operations/format.ts';
import type { Placeholder } from '../../pose-record.ts';
import type { PageVariant } from '../page.ts';

/**
 * A pose as the status route answers it: a rejection carries a sentence for people (`message`), a ready pose
 * its image's size and a `version` that changes with every publication. Servers before these fields send
 * neither: the page then shows what it has.
 */
type ShownPose = PoseResult & {
  message?: string;
  width?: number;
  height?: number;
  bytes?: number;
  version?: string;
  variants?: Record<string, string>;
  placeholder?: Placeholder;
};

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
/** The server's configured variants (POSE_VARIANTS), in the order a browser should prefer their types. */
const TYPE_PREFERENCE = ['image/avif', 'image/webp', 'image/jpeg'];
const variants = (JSON.parse(main.dataset.variants ?? '[]') as PageVariant[]).sort((a, b) => TYPE_PREFERENCE.indexOf(a.type) - TYPE_PREFERENCE.indexOf(b.type));

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

/**
 * Fills a `<picture>` with one `<source>` per type of the given variants (each a srcset of its widths, so the
 * browser picks the size for the screen), most preferred type first; the `<img>` inside stays the PNG fallback.
 */
function fillPicture(picture: HTMLPictureElement, shown: readonly PageVariant[], urls: Record<string, string>, version: string | undefined, sizes: string): void {
  for (const source of picture.querySelectorAll('source')) source.remove();
  const image = picture.querySelector('img')!;
  for (const type of TYPE_PREFERENCE) {
    const candidates = shown.filter((variant) => variant.type === type && urls[variant.role] !== undefined);
    if (candidates.length === 0) continue;
    const source = document.createElement('source');
    source.type = type;
    source.sizes = sizes;
    source.srcset = candidates.map((variant) => `${versioned(urls[variant.role]!, version)} ${variant.width}w`).join(', ');
    picture.insertBefore(source, image);
  }
}

/** Shows the placeholder behind an image until it has loaded (then it would show through transparent pixels). */
function showPlaceholder(image: HTMLImageElement, placeholder: Placeholder | undefined): void {
  image.classList.remove('placeholder');
  image.style.backgroundImage = '';
  image.style.backgroundColor = '';
  if (placeholder === undefined) return;
  const hash = Uint8Array.from(atob(placeholder.thumbHash), (char) => char.charCodeAt(0));
  image.classList.add('placeholder');
  image.style.backgroundImage = `url("${thumbHashToDataURL(hash)}")`;
  image.style.backgroundColor = placeholder.dominantColor;
  const clear = () => showPlaceholder(image, undefined);
  if (image.complete && image.naturalWidth > 0) clear();
  else image.addEventListener('load', clear, { once: true });
}

function showReady(pose: Extract<ShownPose, { status: 'ready' }>): void {
  const image = $<HTMLImageElement>('image');
  const thumbnail = $<HTMLImageElement>('thumbnail');
  const urls = pose.variants ?? {};
  // Square boxes take the thumbnail's place; widths (the aspect ratio kept) the image's.
  fillPicture($('thumbnailPicture'), variants.filter((variant) => variant.height === variant.width), urls, pose.version, '400px');
  fillPicture($('imagePicture'), variants.filter((variant) => variant.height === undefined), urls, pose.version, '(max-width: 56rem) 100vw, 54rem');
  // The image's own size reserves its box before it loads (the attributes give the aspect ratio, the width the
  // size: at most 400 px high, as wide as its figure, never upscaled), so the placeholder has a shape and nothing
  // moves.
  if (pose.width !== undefined && pose.height !== undefined) {
    image.width = pose.width;
    image.height = pose.height;
    image.style.width = `min(100%, ${Math.min(pose.width, (400 * pose.width) / pose.height).toFixed(2)}px)`;
  }
  image.src = versioned(pose.imageUrl, pose.version);
  thumbnail.src = versioned(pose.thumbnailUrl, pose.version);
  showPlaceholder(image, pose.placeholder);
  showPlaceholder(thumbnail, pose.placeholder);
  $('imageUrl').textContent = pose.imageUrl;
  $('thumbnailUrl').textContent = pose.thumbnailUrl;
  $('variantUrls').textContent = Object.entries(urls)
    .map(([role, url]) => `${role}: ${url}`)
    .join(' · ');
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
