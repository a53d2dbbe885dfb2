import type { ObjectStore } from '../../lib/storage/object-store.ts';

/** `inner` with some of its methods replaced; every other call goes through to it unchanged. */
export function wrapStore(inner: ObjectStore, overrides: Partial<ObjectStore> = {}): ObjectStore {
  return {
    put: (...args) => inner.put(...args),
    get: (...args) => inner.get(...args),
    head: (...args) => inner.head(...args),
    copy: (...args) => inner.copy(...args),
    delete: (...args) => inner.delete(...args),
    list: (...args) => inner.list(...args),
    presignUpload: (...args) => inner.presignUpload(...args),
    dialect: () => inner.dialect(),
    prepare: () => inner.prepare(),
    ...overrides,
  };
}
