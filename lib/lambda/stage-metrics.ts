import { parseJson } from '../json.ts';

/**
 * Where a stage's metrics go: one CloudWatch namespace, the stage as a dimension. Shared by the thumbnail
 * function, the dead-letters Worker and the alarms of infra/, so it imports nothing with Node built-ins.
 */
export const METRICS_NAMESPACE = 'pose-storage';

/** The SST stage, from the app resource SST binds to every function and Worker (`{"name", "stage"}`). */
export function stageOf(env: { readonly SST_RESOURCE_App?: string | undefined }): string {
  const stage = (parseJson(env.SST_RESOURCE_App ?? '') as { stage?: unknown } | null | undefined)?.stage;
  return typeof stage === 'string' && stage !== '' ? stage : 'unknown';
}
