/**
 * The local server for the end-to-end benchmark, in its own process: `node test/bench/e2e-server.ts <dir>`
 * (forked with an IPC channel). startLocalServer on `dir` with PORT=0, logs discarded. It reports when each
 * upload becomes ready: the status route answers `ready` from the moment processUpload has deleted the staging
 * object (after publishing image and thumbnail), so the store's delete is wrapped to send `{ready: key}` right
 * after it completes. Nothing else is changed or slowed down. `close` on the channel closes the server.
 */
import { parseConfig } from '../../lib/config.ts';
import { STAGING_PREFIX } from '../../lib/layout.ts';
import { startLocalServer } from '../../lib/local/server.ts';
import { createLogger } from '../../lib/logger.ts';

const [dir] = process.argv.slice(2);
if (!dir || !process.send) throw new Error('usage: fork("test/bench/e2e-server.ts", [dir]) with an IPC channel');
const send = process.send.bind(process);

const config = parseConfig({ STORAGE_MODE: 'local', UPLOAD_PATH: dir, PORT: '0' });
const server = await startLocalServer({ config, logger: createLogger(() => undefined) });
const { store } = server.services.storage;
const deleteKeys = store.delete.bind(store);
store.delete = async (keys) => {
  await deleteKeys(keys);
  for (const key of keys) if (key.startsWith(STAGING_PREFIX)) send({ ready: key });
};
process.on('message', (message) => {
  if (message === 'close') {
    void server.close().then(() => process.exit(0));
  }
});
send({ url: server.url });
