// Builds the console into web/dist, which the server serves at `/` (DESIGN.md §3).
// Everything is bundled: the console loads nothing from the internet.
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

export default defineConfig({
  root: new URL('.', import.meta.url).pathname,
  plugins: [react()],
  base: '/',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // No inline scripts or styles: the server's CSP forbids 'unsafe-inline'.
    assetsInlineLimit: 0,
    sourcemap: false,
    // One bundle for the whole console (React, TanStack, Chart.js): about 600 kB, served once and cached.
    chunkSizeWarningLimit: 1024,
  },
});
