// Builds page/ into a static bundle (the test serves it from its own origin).
import { defineConfig } from "vite";

export default defineConfig({
  root: "page",
  base: "./",
  logLevel: "error",
  build: { emptyOutDir: true, chunkSizeWarningLimit: 4096 },
});
