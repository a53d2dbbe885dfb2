/**
 * The thumbnail chart (test/bench/thumbnails.svg): per image, the median time (log scale) and the thumbnail's
 * size of the decode floor, our pipeline, the reference's settings and the peers. Plain SVG, no dependencies.
 */
import type { CaseFigures, Image } from './thumbnails.ts';
import type { WanFigures } from './wan.ts';

interface Series {
  id: string;
  label: string;
  colour: string;
}

const SERIES: readonly Series[] = [
  { id: 'floor', label: 'decode floor', colour: '#9e9e9e' },
  { id: 'ours', label: 'ours (renderPose thumbnail)', colour: '#1b7837' },
  { id: 'reference', label: "reference's settings", colour: '#762a83' },
  { id: 'imagemagick', label: 'ImageMagick', colour: '#e08214' },
  { id: 'jimp', label: 'jimp', colour: '#2166ac' },
];

const escape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function thumbnailChart(images: readonly Image[], figures: readonly CaseFigures[]): string {
  const find = (image: Image, id: string): CaseFigures | undefined => {
    const caseId = id === 'floor' ? (image.format === 'png' ? 'decode' : 'decode-shrink') : id;
    return figures.find((f) => f.image === image.name && f.id === caseId);
  };
  const barHeight = 11;
  const groupGap = 16;
  const groupHeight = SERIES.length * barHeight + groupGap;
  const top = 78;
  const labelWidth = 150;
  const panelWidth = 330;
  const gap = 70;
  const width = labelWidth + panelWidth * 2 + gap + 40;
  const height = top + images.length * groupHeight + 40;

  const times = figures.map((f) => f.medianMs).filter((v) => v > 0);
  const minLog = Math.floor(Math.log10(Math.max(1, Math.min(...times))));
  const maxLog = Math.log10(Math.max(...times) * 1.3);
  const timeX = (msValue: number) => labelWidth + ((Math.log10(Math.max(msValue, 10 ** minLog)) - minLog) / (maxLog - minLog)) * panelWidth;
  const maxKb = Math.max(...figures.filter((f) => f.outputBytes !== undefined && f.group !== 'image').map((f) => f.outputBytes! / 1024));
  const kbStep = maxKb > 200 ? 50 : 20;
  const kbMax = Math.ceil(maxKb / kbStep) * kbStep;
  const bytesLeft = labelWidth + panelWidth + gap;
  const bytesX = (kbValue: number) => bytesLeft + (kbValue / kbMax) * panelWidth;

  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="${labelWidth}" y="18" font-size="14" font-weight="bold">400x400 thumbnails: median time (1 thread, log scale) and size</text>`,
  );
  let legendX = labelWidth;
  for (const series of SERIES) {
    parts.push(`<rect x="${legendX}" y="30" width="10" height="10" fill="${series.colour}"/>`, `<text x="${legendX + 14}" y="39">${escape(series.label)}</text>`);
    legendX += 14 + series.label.length * 6.2 + 18;
  }
  parts.push(`<text x="${labelWidth}" y="${top - 12}" font-weight="bold">milliseconds</text>`, `<text x="${bytesLeft}" y="${top - 12}" font-weight="bold">thumbnail KiB (floor: none)</text>`);
  for (let power = minLog; power <= Math.floor(maxLog); power++) {
    const x = timeX(10 ** power);
    parts.push(
      `<line x1="${x}" y1="${top - 4}" x2="${x}" y2="${height - 30}" stroke="#e0e0e0"/>`,
      `<text x="${x}" y="${height - 16}" text-anchor="middle">${10 ** power}</text>`,
    );
  }
  for (let value = 0; value <= kbMax; value += kbStep) {
    const x = bytesX(value);
    parts.push(`<line x1="${x}" y1="${top - 4}" x2="${x}" y2="${height - 30}" stroke="#e0e0e0"/>`, `<text x="${x}" y="${height - 16}" text-anchor="middle">${value}</text>`);
  }
  images.forEach((image, row) => {
    const y0 = top + row * groupHeight;
    parts.push(
      `<text x="${labelWidth - 8}" y="${y0 + (SERIES.length * barHeight) / 2}" text-anchor="end" font-weight="bold">${escape(image.name)}</text>`,
      `<text x="${labelWidth - 8}" y="${y0 + (SERIES.length * barHeight) / 2 + 13}" text-anchor="end" fill="#555">${image.width}x${image.height}</text>`,
    );
    SERIES.forEach((series, i) => {
      const y = y0 + i * barHeight;
      const entry = find(image, series.id);
      if (!entry) {
        parts.push(`<text x="${labelWidth + 4}" y="${y + barHeight - 2}" fill="#999">${escape(series.label)}: n/a</text>`);
        return;
      }
      const x = timeX(entry.medianMs);
      parts.push(
        `<rect x="${labelWidth}" y="${y}" width="${Math.max(1, x - labelWidth).toFixed(1)}" height="${barHeight - 2}" fill="${series.colour}"><title>${escape(`${image.name} ${series.label}: ${entry.medianMs.toFixed(1)} ms`)}</title></rect>`,
        `<text x="${(x + 4).toFixed(1)}" y="${y + barHeight - 2}">${entry.medianMs >= 100 ? entry.medianMs.toFixed(0) : entry.medianMs.toFixed(1)}</text>`,
      );
      if (entry.outputBytes !== undefined) {
        const kbValue = entry.outputBytes / 1024;
        const xb = bytesX(kbValue);
        parts.push(
          `<rect x="${bytesLeft}" y="${y}" width="${Math.max(1, xb - bytesLeft).toFixed(1)}" height="${barHeight - 2}" fill="${series.colour}"><title>${escape(`${image.name} ${series.label}: ${kbValue.toFixed(1)} KiB`)}</title></rect>`,
          `<text x="${(xb + 4).toFixed(1)}" y="${y + barHeight - 2}">${kbValue.toFixed(0)}</text>`,
        );
      }
    });
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

/**
 * The WAN chart (test/bench/wan.svg): per upload, the time from the event to ready over the WAN-shaped link,
 * ours against the reference's straightforward flow, with the bytes the function sent.
 */
export function wanChart(wan: WanFigures): string {
  const series = [
    { id: 'ours', label: 'ours', colour: '#1b7837' },
    { id: 'reference', label: 'reference, straightforward', colour: '#762a83' },
  ] as const;
  const barHeight = 16;
  const groupHeight = series.length * barHeight + 22;
  const top = 70;
  const labelWidth = 250;
  const panelWidth = 460;
  const width = labelWidth + panelWidth + 150;
  const height = top + wan.uploads.length * groupHeight + 30;
  const maxMs = Math.max(...wan.uploads.flatMap((upload) => [upload.ours.ms, upload.reference.ms]));
  const x = (value: number) => labelWidth + (value / maxMs) * panelWidth;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="${labelWidth}" y="18" font-size="14" font-weight="bold">Event to ready over a ${wan.rttMs} ms, ${wan.mbps} Mbit/s link (median ms; KiB the function sent)</text>`,
  ];
  let legendX = labelWidth;
  for (const entry of series) {
    parts.push(`<rect x="${legendX}" y="32" width="10" height="10" fill="${entry.colour}"/>`, `<text x="${legendX + 14}" y="41">${escape(entry.label)}</text>`);
    legendX += 14 + entry.label.length * 6.2 + 24;
  }
  wan.uploads.forEach((upload, row) => {
    const y0 = top + row * groupHeight;
    parts.push(
      `<text x="${labelWidth - 8}" y="${y0 + barHeight}" text-anchor="end" font-weight="bold">${escape(upload.image)}</text>`,
      `<text x="${labelWidth - 8}" y="${y0 + barHeight + 14}" text-anchor="end" fill="#555">${upload.width}x${upload.height}, ${(upload.bytes / 2 ** 20).toFixed(1)} MiB</text>`,
    );
    series.forEach((entry, i) => {
      const flow = upload[entry.id];
      const y = y0 + i * barHeight;
      parts.push(
        `<rect x="${labelWidth}" y="${y}" width="${Math.max(1, x(flow.ms) - labelWidth).toFixed(1)}" height="${barHeight - 3}" fill="${entry.colour}"><title>${escape(`${upload.image} ${entry.label}: ${flow.ms.toFixed(0)} ms, ${flow.requests} requests`)}</title></rect>`,
        `<text x="${(x(flow.ms) + 4).toFixed(1)}" y="${y + barHeight - 5}">${flow.ms.toFixed(0)} ms, ${(flow.sent / 1024).toFixed(0)} KiB sent</text>`,
      );
    });
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
