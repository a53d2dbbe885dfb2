import type { ObjectStore } from '../storage/object-store.ts';

/**
 * The bytes of object bodies a store adapter received (get) and sent (put) through this process, for the
 * thumbnail function's BytesIn/BytesOut metrics. A copy inside the store moves no byte through the process
 * and counts nothing; request and response headers are not counted.
 */
export interface StoreTraffic {
  readonly bytesIn: number;
  readonly bytesOut: number;
}

/** `store`, counting its traffic into the returned totals. */
export function countTraffic(store: ObjectStore): { store: ObjectStore; traffic: StoreTraffic } {
  const traffic = { bytesIn: 0, bytesOut: 0 };
  const counted: ObjectStore = {
    put: (key, body, options) => {
      traffic.bytesOut += body.byteLength; // sent, whether or not the store then accepts it
      return store.put(key, body, options);
    },
    get: async (key, options) => {
      const object = await store.get(key, options);
      if (object) traffic.bytesIn += object.body.byteLength;
      return object;
    },
    // Every argument passes through: a request made under a pose's lock carries its deadline (signal).
    head: (...args) => store.head(...args),
    copy: (...args) => store.copy(...args),
    delete: (...args) => store.delete(...args),
    list: (...args) => store.list(...args),
    presignUpload: (...args) => store.presignUpload(...args),
    dialect: () => store.dialect(),
    prepare: () => store.prepare(),
  };
  return { store: counted, traffic };
}
