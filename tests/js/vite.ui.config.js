// The chat UI of `make ui` (ui/): served by `vite` (dev) or built to a static bundle (the
// browser test). BERTH_URL (or ?api=URL on the page) says which Berth it talks to.
import { defineConfig } from "vite";

export default defineConfig({
  root: "ui",
  base: "./",
  logLevel: "info",
  define: {
    __BERTH_URL__: JSON.stringify(process.env.BERTH_URL ?? "http://127.0.0.1:2024"),
    __BERTH_ASSISTANT__: JSON.stringify(process.env.BERTH_ASSISTANT ?? "agent"),
  },
  build: { emptyOutDir: true, chunkSizeWarningLimit: 4096 },
});
