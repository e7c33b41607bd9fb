/**
 * The module every FUSE worker thread builds its tree from, named by URL because each
 * worker imports it itself. Beside this file: procview-tree.ts in the sources, .js in the
 * built package. The single executable's build (scripts/build.ts) replaces this module
 * with one naming the bundled tree as a data: URL, since it has no files on disk.
 */

const moduleUrl = import.meta.url;
const extension = moduleUrl.slice(moduleUrl.lastIndexOf("."));

export const procviewTreeModule = new URL(`../views/procview-tree${extension}`, moduleUrl).href;
