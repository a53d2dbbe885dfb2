/**
 * BENCHMARKS.md's generated blocks: each lives between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->`,
 * and `npm run bench` rewrites them from its results (the prose around them is written by hand).
 */
import { coldStartChecks, type ColdStartResult, type ImportFigures } from './cold-start.ts';
import { geometricMean, kb, mb, median, ms, ratio, table } from './common.ts';
import type { E2eFigures } from './e2e.ts';
import type { HandlerRss } from './handler-rss.ts';
import type { Profile } from './profile-case.ts';
import type { PresignFigures } from './presign-case.ts';
import type { CaseFigures, Image } from './thumbnails.ts';
import type { MicroFigures } from '../../lib/pose-image.bench.ts';
import type { VariantFigures } from './variants-case.ts';
import type { FlowFigures, WanFigures } from './wan.ts';

export interface Machine {
  date: string;
  nproc: number;
  cpu: string;
  memory: string;
  kernel: string;
  node: string;
  sharp: string;
  libvips: string;
  imagemagick: string;
  jimp: string;
  esbuild: string;
}

export interface Results {
  machine: Machine;
  quick: boolean;
  corpus: string;
  command: string;
  durationSeconds: number;
  /** CPU cores kept busy by other processes when each section started (1 s sample, the suite idle). */
  load: Record<string, number>;
  settings: { thumbnail: object; image: object };
  images?: Image[];
  thumbnails?: CaseFigures[];
  conversions?: CaseFigures[];
  profiles?: Profile[];
  handlerRss?: HandlerRss[];
  coldStart?: ColdStartResult;
  e2e?: E2eFigures[];
  presign?: PresignFigures;
  micro?: MicroFigures[];
  wan?: WanFigures;
  variants?: VariantFigures[];
}

/** Lambda arm64 price (us-east-1): per GB-second, and per request. */
export const PRICE_GB_SECOND = 0.0000133334;
export const PRICE_REQUEST = 0.2 / 1_000_000;
/** Lambda gives one full vCPU at 1,769 MB; below, CPU time is proportional to memory. */
export const ONE_VCPU_MB = 1769;
export const RECOMMENDED_MB = 1769;
const MEMORY_SIZES = [512, 1024, 1769, 2048, 3008];
/** R2 Standard storage per GB-month. */
const R2_GB_MONTH = 0.015;

const pct = (value: number) => `${value >= 0 ? '+' : ''}${(value * 100).toFixed(0)}%`;
const mib = (bytes: number) => `${mb(bytes)}`;
const mark = (ok: boolean) => (ok ? '**met**' : '**missed**');

function figure(results: Results, image: string, id: string): CaseFigures | undefined {
  return results.thumbnails?.find((f) => f.image === image && f.id === id);
}

function floorOf(results: Results, image: Image): CaseFigures | undefined {
  return figure(results, image.name, image.format === 'png' ? 'decode' : 'decode-shrink');
}

/** Lambda cost of one invocation lasting `durationMs` at `memoryMb`. */
export function invocationCost(durationMs: number, memoryMb: number): number {
  return (memoryMb / 1024) * (durationMs / 1000) * PRICE_GB_SECOND + PRICE_REQUEST;
}

/** Duration at `memoryMb` of work measured on one full core (CPU share below 1,769 MB; no gain above, one thread). */
export function durationAt(oneCoreMs: number, memoryMb: number): number {
  return oneCoreMs * Math.max(1, ONE_VCPU_MB / memoryMb);
}

export function machineBlock(results: Results): string {
  const { machine } = results;
  const loads = Object.entries(results.load)
    .map(([section, load]) => `${section} ${load.toFixed(2)}`)
    .join(', ');
  return [
    table(
      ['', ''],
      [
        ['date', machine.date],
        ['command', `\`${results.command}\`${results.quick ? ' (quick mode: fewer runs, fewer variants)' : ''}`],
        ['run time', `${(results.durationSeconds / 60).toFixed(1)} min`],
        ['corpus', `\`${results.corpus}\``],
        ['CPU', `${machine.cpu}, \`nproc\` ${machine.nproc}`],
        ['memory, kernel', `${machine.memory}, Linux ${machine.kernel}`],
        ['Node', machine.node],
        ['sharp / libvips', `${machine.sharp} / ${machine.libvips}`],
        ['ImageMagick', machine.imagemagick],
        ['jimp, esbuild', `${machine.jimp}, ${machine.esbuild}`],
        ['cores busy with other processes at each section start (1 s sample)', loads],
      ],
      ['l', 'l'],
    ),
  ].join('\n');
}

export function settingsBlock(results: Results): string {
  return [
    `- thumbnail: \`png(${JSON.stringify(results.settings.thumbnail)})\` after \`autoOrient().resize(400, 400, {fit: 'cover'})\``,
    `- published full-size PNG of a JPEG/WebP: \`png(${JSON.stringify(results.settings.image)})\` after \`autoOrient()\` (a PNG upload is published by a server-side copy when it carries no metadata chunks, otherwise with its ancillary chunks dropped and its pixel data untouched; never decoded)`,
  ].join('\n');
}

interface Targets {
  rows: string[][];
}

function targets(results: Results): Targets {
  const rows: string[][] = [];
  const images = results.images ?? [];
  if (results.thumbnails) {
    const speedups = images.map((image) => {
      const ours = figure(results, image.name, 'ours');
      const reference = figure(results, image.name, 'reference');
      return ours && reference ? reference.medianMs / ours.medianMs : Number.NaN;
    });
    const bytesRatios = images.map((image) => {
      const ours = figure(results, image.name, 'ours');
      const reference = figure(results, image.name, 'reference');
      return ours?.outputBytes && reference?.outputBytes ? ours.outputBytes / reference.outputBytes : Number.NaN;
    });
    const slowest = Math.min(...speedups);
    rows.push([
      "thumbnail ≥ 2.5x faster than the reference's settings (median over the corpus), never slower",
      `median of per-image speed-ups ${ratio(median(speedups))} (${images.map((image, i) => `${image.name} ${ratio(speedups[i]!)}`).join(', ')}; geometric mean ${ratio(geometricMean(speedups))}); slowest ${ratio(slowest)} (${images[speedups.indexOf(slowest)]?.name}, decode-bound)`,
      `${mark(median(speedups) >= 2.5)} / ${slowest > 1 ? '**met**' : '**missed**'}`,
    ]);
    rows.push([
      "thumbnail bytes ≤ 1.3x the reference's",
      `largest ${ratio(Math.max(...bytesRatios))} (${images[bytesRatios.indexOf(Math.max(...bytesRatios))]?.name}), median ${ratio(median(bytesRatios))}`,
      mark(Math.max(...bytesRatios) <= 1.3),
    ]);
    let slowestPeer = Number.POSITIVE_INFINITY;
    let slowestPeerAt = '';
    let largestBytes = 0;
    let largestBytesAt = '';
    for (const image of images) {
      const ours = figure(results, image.name, 'ours');
      for (const peer of ['imagemagick', 'jimp']) {
        const theirs = figure(results, image.name, peer);
        if (!ours || !theirs) continue;
        const speed = theirs.medianMs / ours.medianMs;
        if (speed < slowestPeer) [slowestPeer, slowestPeerAt] = [speed, `${peer} on ${image.name}`];
        const bytes = ours.outputBytes! / theirs.outputBytes!;
        if (bytes > largestBytes) [largestBytes, largestBytesAt] = [bytes, `${peer} on ${image.name}`];
      }
    }
    rows.push([
      'faster than every peer on every image, same or smaller output',
      `closest: ${ratio(slowestPeer)} faster (${slowestPeerAt}); our bytes at most ${ratio(largestBytes)} theirs (${largestBytesAt})`,
      mark(slowestPeer > 1 && largestBytes <= 1),
    ]);
  }
  if (results.profiles) {
    const worst = results.profiles.map((p) => p.processUpload / p.decode);
    rows.push([
      'per-stage profile, whole ÷ decode floor',
      results.profiles.map((p) => `${p.image} ${ratio(p.processUpload / p.decode)}`).join(', '),
      `reported (largest ${ratio(Math.max(...worst))})`,
    ]);
  }
  if (results.handlerRss) {
    const fiveK = results.handlerRss.filter((r) => r.size === '5120x2880');
    const large = results.handlerRss.filter((r) => r.size === '7071x7071');
    const maxFiveK = Math.max(...fiveK.map((r) => r.rssBytes));
    const maxLarge = Math.max(...large.map((r) => r.rssBytes));
    const allCorpus = results.handlerRss.filter((r) => r.status === 'ready' && r.size !== '7071x7071');
    const maxCorpus = Math.max(...allCorpus.map((r) => r.rssBytes));
    rows.push([
      'thumbnail handler peak RSS < 256 MiB on the 5120x2880 images',
      `${mib(maxFiveK)} MiB (largest over the whole corpus: ${mib(maxCorpus)} MiB, ${allCorpus.find((r) => r.rssBytes === maxCorpus)?.image})`,
      mark(maxFiveK < 256 * 2 ** 20),
    ]);
    if (large.length > 0) {
      rows.push(['… < 512 MiB at MAX_INPUT_PIXELS (7071x7071 JPEG and PNG)', `${mib(maxLarge)} MiB`, mark(maxLarge < 512 * 2 ** 20)]);
    }
  }
  if (results.coldStart) {
    for (const check of coldStartChecks(results.coldStart)) {
      rows.push([`${check.target} (${check.layout === 'split' ? 'nodejs.splitting' : "one file, SST's default"})`, check.measured, mark(check.met)]);
    }
  }
  if (results.e2e) {
    const one = results.e2e.find((e) => e.concurrency === 1);
    const sixteen = results.e2e.find((e) => e.concurrency === 16);
    if (one) rows.push(['local end to end p50 < 120 ms (ai-1024.png, concurrency 1)', `p50 ${ms(one.p50Ms)} ms, p99 ${ms(one.p99Ms)} ms`, mark(one.p50Ms < 120)]);
    if (sixteen) {
      rows.push([
        'no upload lost at concurrency 16',
        `${sixteen.ready}/${sixteen.uploads} ready, ${sixteen.stagedLeft} left staged (p50 ${ms(sixteen.p50Ms)} ms: queueing behind 2 workers)`,
        mark(sixteen.lost === 0 && sixteen.stagedLeft === 0),
      ]);
    }
  }
  const typical = results.profiles?.find((p) => p.image === 'ai-1024.png') ?? results.profiles?.[0];
  if (typical) {
    const cost = 1000 * invocationCost(durationAt(typical.processUpload, RECOMMENDED_MB), RECOMMENDED_MB);
    rows.push([
      'cost per 1,000 thumbnails (arm64, recommended memory)',
      `$${cost.toFixed(4)} for ${typical.image} at ${RECOMMENDED_MB} MB (see the cost table)`,
      'reported',
    ]);
  }
  if (results.variants?.length) rows.push(...variantTargets(results.variants));
  return { rows };
}

export function summaryBlock(results: Results): string {
  return table(['target', 'measured', ''], targets(results).rows, ['l', 'l', 'l']);
}

export function thumbnailsBlock(results: Results): string {
  const images = results.images ?? [];
  const rows: string[][] = [];
  const order = ['decode', 'decode-shrink', 'ours', 'ours-whole', 'reference', 'imagemagick', 'jimp'];
  for (const image of images) {
    const floor = floorOf(results, image);
    const reference = figure(results, image.name, 'reference');
    let first = true;
    for (const id of order) {
      const entry = figure(results, image.name, id);
      if (!entry) continue;
      const q = entry.quality;
      rows.push([
        first ? `${image.name}<br>${image.width}x${image.height}` : '',
        id === 'ours' ? `**${entry.label}**` : entry.label,
        ms(entry.medianMs),
        floor ? ratio(entry.medianMs / floor.medianMs) : 'n/a',
        reference ? ratio(entry.medianMs / reference.medianMs) : 'n/a',
        entry.outputBytes === undefined ? '' : kb(entry.outputBytes),
        entry.outputBytes !== undefined && reference?.outputBytes ? ratio(entry.outputBytes / reference.outputBytes) : '',
        mib(entry.rssBytes),
        reference ? ratio(entry.rssBytes / reference.rssBytes) : 'n/a',
        q ? q.psnr.toFixed(1) : '',
        q ? q.ssim.toFixed(4) : '',
        q ? q.smoothPsnr.toFixed(1) : '',
      ]);
      first = false;
    }
  }
  return table(
    ['image', 'pipeline', 'median ms', '× floor', '× ref', 'KiB', '× ref', 'peak RSS MiB', '× ref', 'PSNR dB', 'SSIM', 'smooth PSNR dB'],
    rows,
  );
}

export function tradeoffBlock(results: Results): string {
  const images = results.images ?? [];
  const variantIds = [...new Set((results.thumbnails ?? []).filter((f) => f.group === 'variant').map((f) => f.id))];
  const rows: string[][] = [];
  for (const id of ['reference', 'ours', ...variantIds]) {
    const timeRatios: number[] = [];
    const byteRatios: number[] = [];
    const dPsnr: number[] = [];
    const dSsim: number[] = [];
    const dSmooth: number[] = [];
    const times: number[] = [];
    for (const image of images) {
      const entry = figure(results, image.name, id);
      const reference = figure(results, image.name, 'reference');
      if (!entry || !reference) continue;
      times.push(entry.medianMs);
      timeRatios.push(entry.medianMs / reference.medianMs);
      byteRatios.push(entry.outputBytes! / reference.outputBytes!);
      if (entry.quality && reference.quality) {
        dPsnr.push(entry.quality.psnr - reference.quality.psnr);
        dSsim.push(entry.quality.ssim - reference.quality.ssim);
        dSmooth.push(entry.quality.smoothPsnr - reference.quality.smoothPsnr);
      }
    }
    if (timeRatios.length === 0) continue;
    const label = id === 'reference' ? "reference's settings (effort 7, dither 1, level 6)" : id === 'ours' ? '**ours** (renderPose)' : figure(results, images[0]!.name, id)?.label ?? id;
    const signed = (v: number, digits: number) => `${v >= 0 ? '+' : ''}${v.toFixed(digits)}`;
    rows.push([
      label,
      ratio(median(timeRatios)),
      ratio(Math.max(...timeRatios)),
      ratio(median(byteRatios)),
      ratio(Math.max(...byteRatios)),
      dPsnr.length ? signed(median(dPsnr), 2) : '',
      dSsim.length ? signed(median(dSsim), 4) : '',
      dSmooth.length ? signed(median(dSmooth), 2) : '',
      dSmooth.length ? signed(Math.min(...dSmooth), 2) : '',
    ]);
  }
  const summary = table(
    ['PNG settings (quality 85)', 'time × ref (median)', '(worst)', 'bytes × ref (median)', '(largest)', 'Δ PSNR dB', 'Δ SSIM', 'Δ smooth PSNR dB (median)', '(worst)'],
    rows,
  );
  const detailRows: string[][] = [];
  for (const image of images) {
    for (const id of ['reference', 'ours', ...variantIds]) {
      const entry = figure(results, image.name, id);
      if (!entry) continue;
      detailRows.push([
        image.name,
        id === 'ours' ? '**ours**' : id === 'reference' ? 'reference' : entry.label,
        ms(entry.medianMs),
        kb(entry.outputBytes!),
        entry.quality ? entry.quality.psnr.toFixed(2) : '',
        entry.quality ? entry.quality.ssim.toFixed(4) : '',
        entry.quality ? entry.quality.smoothPsnr.toFixed(2) : '',
      ]);
    }
  }
  return [
    summary,
    '',
    '<details><summary>Per image</summary>',
    '',
    table(['image', 'settings', 'median ms', 'KiB', 'PSNR dB', 'SSIM', 'smooth PSNR dB'], detailRows),
    '',
    '</details>',
  ].join('\n');
}

export function conversionBlock(results: Results): string {
  const rows: string[][] = [];
  const conversions = results.conversions ?? [];
  const chosen = `image:c${(results.settings.image as { compressionLevel: number }).compressionLevel}:${(results.settings.image as { adaptiveFiltering: boolean }).adaptiveFiltering ? 'af' : 'nf'}`;
  for (const image of [...new Set(conversions.map((c) => c.image))]) {
    const base = conversions.find((c) => c.image === image && c.id === 'image:c6:nf');
    for (const entry of conversions.filter((c) => c.image === image)) {
      const lambda = 1000 * invocationCost(durationAt(entry.medianMs, RECOMMENDED_MB), RECOMMENDED_MB) - 1000 * PRICE_REQUEST;
      const storage = (1000 * entry.outputBytes! * R2_GB_MONTH) / 1e9;
      rows.push([
        image,
        entry.id === chosen ? `**${entry.label}** (ours)` : entry.id === 'image:c6:nf' ? `${entry.label} (sharp's default)` : entry.label,
        ms(entry.medianMs),
        base ? pct(entry.medianMs / base.medianMs - 1) : '',
        mib(entry.outputBytes!),
        base ? pct(entry.outputBytes! / base.outputBytes! - 1) : '',
        `$${lambda.toFixed(4)}`,
        `$${storage.toFixed(4)}`,
      ]);
    }
  }
  return table(
    ['image', 'PNG encoding', 'median ms', 'vs level 6', 'MiB', 'vs level 6', `Lambda $ per 1,000 (${RECOMMENDED_MB} MB)`, 'R2 $ per 1,000 per month'],
    rows,
  );
}

export function profileBlock(results: Results): string {
  // Stages are differences of cumulative pipelines: a negative one is measurement noise around zero.
  const stage = (value: number) => (value < 0.5 ? '~0' : ms(value));
  const rows = (results.profiles ?? []).map((p) => {
    const resize = p.decodeResize - p.decode;
    const quantise = p.quantised - p.decodeResize;
    const deflate = p.thumbnail - p.quantised;
    const store = p.storeGet + p.storePut + p.storeDelete;
    const rest = p.processUpload - p.renderPose - store;
    return [
      `${p.image}`,
      ms(p.header),
      ms(p.decode),
      stage(resize),
      stage(quantise),
      stage(deflate),
      ms(p.thumbnail),
      p.conversion === undefined ? '–' : ms(p.conversion),
      ms(p.renderPose),
      `${ms(store)} (${ms(p.storeGet)} + ${ms(p.storePut)} + ${ms(p.storeDelete)})`,
      stage(rest),
      ms(p.processUpload),
      ratio(p.thumbnail / p.decode),
      ratio(p.processUpload / p.decode),
    ];
  });
  return table(
    ['image', 'header', 'decode (floor)', 'resize', 'quantise', 'deflate', 'thumbnail', 'full-size PNG', 'renderPose', 'store I/O (get + put + delete)', 'other', 'processUpload', 'thumbnail ÷ floor', 'whole ÷ floor'],
    rows,
  );
}

export function rssBlock(results: Results): string {
  const rows = (results.handlerRss ?? []).map((r) => [
    r.image,
    r.size,
    mib(r.rssBytes),
    r.status === 'baseline' ? '' : ms(r.ms),
    r.status,
    r.publishedBytes ? mib(r.publishedBytes) : '',
    r.thumbnailBytes ? kb(r.thumbnailBytes) : '',
  ]);
  return table(['upload', 'size', 'peak RSS MiB', 'handler ms', 'status', 'published image MiB', 'thumbnail KiB'], rows);
}

export function coldStartBlock(results: Results): string {
  const cold = results.coldStart;
  if (!cold) return '';
  const header = ['bundle', 'KiB loaded at import', 'process ms', 'over bare node', 'import (in process)', 'first call', 'with first call, over bare', 'RSS MiB'];
  const row = (f: ImportFigures) => [
    f.layout ? `${f.name} (${f.layout})` : f.name,
    kb(f.bytes),
    ms(f.processMs),
    `+${ms(f.overBareMs)}`,
    ms(f.importMs),
    f.firstCallMs === undefined ? '' : ms(f.firstCallMs),
    f.withFirstCallOverBareMs === undefined ? '' : `+${ms(f.withFirstCallOverBareMs)}`,
    mib(f.rssBytes),
  ];
  const loaded = (bundle: ColdStartResult['bundles'][number]) =>
    `- ${bundle.name} (${bundle.layout}): ${kb(bundle.loadedBytes)} of ${kb(bundle.totalBytes)} KiB at import; S3 client ${bundle.s3ClientAtImport ? (bundle.layout === 'single' ? 'in the file (its code runs on first use, its built-in imports at load)' : 'loaded at import') : 'in a chunk loaded by the first store request'}; built-ins at load: ${bundle.builtins.join(', ')}; largest parts: ${bundle.composition
      .slice(0, 6)
      .map((c) => `${c.source} ${kb(c.bytes)}`)
      .join(', ')} KiB`;
  return [
    `Measured ${cold.measured.date} on ${cold.measured.cpu}, Node ${cold.measured.node}. Bare \`node -e 0\`: ${ms(cold.bareMs)} ms, ${mib(cold.bareRssBytes)} MiB (median of ${cold.runs} fresh processes each).`,
    '',
    table(header, cold.functions.map(row)),
    '',
    'What each bundle loads at import (esbuild metafile):',
    '',
    ...cold.bundles.filter((b) => b.name === 'presign' || b.name === 'status' || b.name === 'thumbnail').map(loaded),
    '',
    'Single dependencies, each bundled alone the same way, and the presign bundle with a package replaced by an empty stub (what it still costs there):',
    '',
    table(header, cold.dependencies.map(row)),
  ].join('\n');
}

export function e2eBlock(results: Results): string {
  const rows = (results.e2e ?? []).map((e) => [
    String(e.concurrency),
    String(e.uploads),
    ms(e.p50Ms),
    ms(e.p99Ms),
    ms(e.maxMs),
    ms(e.presignMs),
    ms(e.putMs),
    e.uploadsPerSecond.toFixed(1),
    `${e.ready}/${e.uploads}`,
    String(e.stagedLeft),
  ]);
  const presign = results.presign;
  return [
    table(['concurrency', 'uploads', 'PUT end → ready p50 ms', 'p99 ms', 'max ms', 'presign request ms', 'PUT ms', 'uploads/s', 'ready', 'left staged'], rows),
    '',
    presign
      ? `Presign handler called directly (r2 mode, dummy endpoint, whole middy stack, one thread): **${presign.perSecond.toFixed(0)} presigned URLs per second** (${presign.calls} calls; p50 ${ms(presign.p50Ms)} ms, p99 ${ms(presign.p99Ms)} ms).`
      : '',
  ].join('\n');
}

export function microBlock(results: Results): string {
  const rows = (results.micro ?? []).map((m) => [m.task, String(m.samples), ms(m.meanMs), ms(m.p50Ms), ms(m.p99Ms), `±${m.rmePercent.toFixed(1)}%`]);
  return table(['tinybench task', 'samples', 'mean ms', 'p50 ms', 'p99 ms', 'rme'], rows);
}

export function costBlock(results: Results): string {
  const profiles = results.profiles ?? [];
  const rows = profiles.map((p) => [
    p.image,
    ms(p.processUpload),
    ...MEMORY_SIZES.map((memory) => {
      const duration = durationAt(p.processUpload, memory);
      return `$${(1000 * invocationCost(duration, memory)).toFixed(4)} (${ms(duration)} ms)`;
    }),
  ]);
  return table(['upload', 'processUpload on 1 core, ms', ...MEMORY_SIZES.map((m) => `${m} MB${m === RECOMMENDED_MB ? ' (recommended)' : m === 2048 ? ' (deployed)' : ''}`)], rows);
}

/** A flow over the WAN link: time, bytes each way, requests and the round trips they took. */
function flowCells(flow: FlowFigures): string[] {
  return [ms(flow.ms), kb(flow.sent), kb(flow.received), String(flow.requests), String(flow.roundTrips)];
}

function wanBlock(results: Results): string {
  const wan = results.wan;
  if (!wan) return '_Not run yet: `npm run bench -- --only=wan`._';
  const header = ['flow', 'who', 'ms (median)', 'KiB sent', 'KiB received', 'requests', 'round trips'];
  const rows: string[][] = [];
  for (const upload of wan.uploads) {
    const label = `upload to ready: ${upload.image} (${upload.width}x${upload.height}, ${mb(upload.bytes)} MiB)`;
    rows.push([label, 'ours', ...flowCells(upload.ours)], ['', 'reference', ...flowCells(upload.reference)]);
  }
  rows.push(['status of a ready pose', 'ours', ...flowCells(wan.status.ours)]);
  rows.push(['delete a pose', 'ours', ...flowCells(wan.remove.ours)], ['', 'reference', ...flowCells(wan.remove.reference)]);
  return [
    `${wan.rttMs} ms round trip, ${wan.mbps} Mbit/s each way, a round trip per new connection; warm functions; median of ${wan.runs} runs.`,
    '',
    table(header, rows, ['l', 'l', 'r', 'r', 'r', 'r', 'r']),
    '',
    '![Time from the event to ready over the WAN link](test/bench/wan.svg)',
  ].join('\n');
}

/** The 1 MP PNG whose publish time the variants target is measured on. */
const VARIANTS_TARGET_IMAGE = 'ai-1024.png';

/** The variants' target rows of the summary. */
function variantTargets(variants: readonly VariantFigures[]): string[][] {
  const rows: string[][] = [];
  const onePng = variants.find((v) => v.image === VARIANTS_TARGET_IMAGE);
  if (onePng) {
    const added = onePng.publishAll / onePng.publishReference - 1;
    const two = onePng.twoThreads;
    const onTwo = two ? `; on two threads ${pct(two.publishAll / two.publishReference - 1)} (${ms(two.publishReference)} → ${ms(two.publishAll)} ms)` : '';
    rows.push([
      `every variant of a 1 MP PNG adds ≤ 60% to its publish time, one thread (${onePng.set})`,
      `${pct(added)} (${ms(onePng.publishReference)} → ${ms(onePng.publishAll)} ms, ${onePng.image})${onTwo}`,
      mark(added <= 0.6),
    ]);
  }
  const webp = variants.map((v) => ({ image: v.image, ratio: (v.variants.find((f) => f.role === 'thumb.webp')?.bytes ?? Number.NaN) / v.thumbnailBytes }));
  const largest = webp.reduce((a, b) => (b.ratio > a.ratio ? b : a), webp[0]!);
  if (largest) rows.push(['400x400 WebP ≤ 1/3 of the PNG thumbnail\'s bytes', `largest ${ratio(largest.ratio)} (${largest.image}), median ${ratio(median(webp.map((w) => w.ratio)))}`, mark(webp.every((w) => w.ratio <= 1 / 3))]);
  const slowest = variants.reduce((a, b) => (b.placeholder > a.placeholder ? b : a), variants[0]!);
  if (slowest) {
    const largest = (key: 'placeholderRender' | 'placeholderFirst') => ms(Math.max(...variants.map((v) => v[key] ?? Number.NaN)));
    rows.push([
      'placeholder < 2 ms (placeholderOf on the thumbnail\'s pixels, warm)',
      `largest ${ms(slowest.placeholder)} ms (${slowest.image}); renderPose with it minus without at most ${largest('placeholderRender')} ms; the first call of a fresh process up to ${largest('placeholderFirst')} ms (V8 interprets it)`,
      mark(variants.every((v) => v.placeholder < 2)),
    ]);
  }
  return rows;
}

const quality = (q: { ssim: number; smoothPsnr: number } | undefined) => (q ? `${q.ssim.toFixed(4)} / ${q.smoothPsnr.toFixed(1)} dB` : '');

export function variantsBlock(results: Results): string {
  const variants = results.variants;
  if (!variants?.length) return '_Not run yet: `npm run bench -- --only=variants`._';
  const roles = variants[0]!.variants.map((f) => f.role);
  const timeRows = variants.map((v) => [
    v.image,
    ms(v.publishReference),
    ms(v.publishAll),
    pct(v.publishAll / v.publishReference - 1),
    v.twoThreads ? `${ms(v.twoThreads.publishReference)} → ${ms(v.twoThreads.publishAll)} (${pct(v.twoThreads.publishAll / v.twoThreads.publishReference - 1)})` : '',
    ...v.variants.map((f) => ms(f.ms)),
    ms(v.placeholderRender),
    ms(v.placeholder),
    ms(v.placeholderFirst),
  ]);
  const bytesRows = variants.map((v) => [
    v.image,
    kb(v.thumbnailBytes),
    quality(v.thumbnailQuality),
    ...v.variants.flatMap((f) => [`${kb(f.bytes)} (${ratio(f.bytes / v.thumbnailBytes)})`, ...(f.quality ? [quality(f.quality)] : [])]),
  ]);
  const costRows = variants.map((v) => {
    const lambda = (oneCoreMs: number) => 1000 * invocationCost(durationAt(oneCoreMs, RECOMMENDED_MB), RECOMMENDED_MB);
    const addedBytes = v.variants.reduce((sum, f) => sum + f.bytes, 0);
    return [v.image, `$${lambda(v.publishReference).toFixed(4)}`, `$${lambda(v.publishAll).toFixed(4)}`, kb(addedBytes), `$${((1000 * addedBytes * R2_GB_MONTH) / 1e9).toFixed(5)}`];
  });
  const qualityRoles = variants[0]!.variants.filter((f) => f.quality).map((f) => f.role);
  return [
    `Variant set \`${variants[0]!.set}\`; medians on one thread (a Lambda function of ${RECOMMENDED_MB} MB has one vCPU), and the publications again on two.`,
    '',
    table(['upload', 'publish ms (processUpload, reference files)', 'with the set, ms', 'added', 'two threads: reference → with the set, ms', ...roles.map((role) => `${role} ms`), 'placeholder ms (render)', 'placeholderOf ms', 'its first call, ms'], timeRows),
    '',
    table(['upload', 'PNG thumbnail KiB', 'its SSIM / smoothed PSNR', ...roles.flatMap((role) => [`${role} KiB (× PNG)`, ...(qualityRoles.includes(role) ? [`${role} SSIM / smoothed PSNR`] : [])])], bytesRows),
    '',
    table(['upload', `Lambda $ per 1,000 publishes, reference (${RECOMMENDED_MB} MB)`, 'with the set', 'variant KiB per pose', 'R2 $ per month per 1,000 poses, added'], costRows),
  ].join('\n');
}

export const BLOCKS: Record<string, (results: Results) => string> = {
  machine: machineBlock,
  settings: settingsBlock,
  summary: summaryBlock,
  thumbnails: thumbnailsBlock,
  tradeoff: tradeoffBlock,
  conversion: conversionBlock,
  profile: profileBlock,
  rss: rssBlock,
  coldstart: coldStartBlock,
  e2e: e2eBlock,
  micro: microBlock,
  cost: costBlock,
  wan: wanBlock,
  variants: variantsBlock,
};

/** Replaces every `<!-- bench:NAME -->...<!-- /bench:NAME -->` block of `markdown` with its generated content. */
export function fillTemplate(markdown: string, results: Results): string {
  return markdown.replace(/<!-- bench:([a-z0-9]+) -->[\s\S]*?<!-- \/bench:\1 -->/g, (whole, name: string) => {
    const render = BLOCKS[name];
    if (!render) return whole;
    return `<!-- bench:${name} -->\n${render(results)}\n<!-- /bench:${name} -->`;
  });
}
