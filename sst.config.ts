/// <reference path="./.sst/platform/config.d.ts" />
export default $config({
  app(input) {
    return { name: "pose-storage", home: "aws" };
  },
  async run() {},
});
