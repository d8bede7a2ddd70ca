import { resolve } from 'node:path';
import { defineConfig } from 'vite';

/**
 * The library build: `hearth` and `hearth/core` as ESM. The Service Worker, page and
 * demo builds join this file when their hosts exist.
 */
export default defineConfig({
  build: {
    target: 'es2023',
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: true,
    lib: {
      entry: {
        index: resolve(import.meta.dirname, 'src/index.ts'),
        core: resolve(import.meta.dirname, 'src/core/index.ts'),
      },
      formats: ['es'],
    },
    rollupOptions: {
      external: [/^node:/],
    },
  },
});
