/**
 * Runs the thumbnail flow on one staged file in a process of its own and prints what it came to with the
 * process's peak RSS, so a test can bound the memory a hostile image costs:
 *   node test/support/process-upload-child.ts <uploadPath> <stagingKey>
 */
import { parseConfig } from '../../lib/config.ts';
import { createLogger } from '../../lib/logger.ts';
import { createServices } from '../../lib/services.ts';

const [uploadPath, key] = process.argv.slice(2);
const { uploads } = createServices({ config: parseConfig({ UPLOAD_PATH: uploadPath }), logger: createLogger(() => undefined) });
const started = performance.now();
const status = await uploads.processUpload({ key: key! });
console.log(JSON.stringify({ status, ms: Math.round(performance.now() - started), maxRssMb: Math.round(process.resourceUsage().maxRSS / 1024) }));
