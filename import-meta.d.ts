/**
 * `import.meta.url` for both type checkers: Node's types declare it, but Deno checks with
 * this project's tsconfig.json (lib ES2023, node types only), whose ImportMeta lacks it.
 */
interface ImportMeta {
  readonly url: string;
}
