/**
 * The import rules of docs/architecture.md, checked by `npm run lint` (dependency-cruiser).
 * Layers inside src/, lowest first: http/ -> model/ -> config.ts -> auth/ -> audit/ -> users/ and tokens/,
 * meta/ -> index.ts. A folder imports only its own files and the layers below it. Type-only
 * imports count (`tsPreCompilationDeps`): a type is a dependency too.
 */

/** What each src/ folder may import from src/ (itself included). */
const allowed = {
  http: "^src/http/",
  model: "^src/(http|model)/",
  config: "^src/(http|model)/|^src/config[.]ts$",
  auth: "^src/(http|model|auth)/|^src/config[.]ts$",
  audit: "^src/(http|model|auth|audit)/|^src/config[.]ts$",
  users: "^src/(http|model|auth|users)/|^src/config[.]ts$|^src/audit/record[.]ts$",
  tokens:
    "^src/(http|model|auth|tokens)/|^src/config[.]ts$|^src/audit/(record|store|query-schema|mask)[.]ts$",
  meta: "^src/(http|meta)/",
};

/** An error-level rule: nothing matching `from` imports anything matching `to`. */
const forbid = (name, comment, from, to) => ({ name, comment, severity: "error", from, to });

const layers = Object.entries(allowed).map(([name, paths]) =>
  forbid(
    `layer-${name}`,
    `src/${name} may import only ${paths} (docs/architecture.md)`,
    { path: name === "config" ? "^src/config[.]ts$" : `^src/${name}/` },
    { path: "^src/", pathNot: paths },
  ),
);

module.exports = {
  forbidden: [
    forbid("no-circular", "No import cycle, type-only imports included.", {}, { circular: true }),
    forbid(
      "src-ships-alone",
      "What wrangler bundles never imports build tools, fakes, perf, scripts or tests.",
      { path: "^src/" },
      { path: "^(tools|fakes|perf|scripts|test)/" },
    ),
    ...layers,
    forbid(
      "routes-mounted-by-index-only",
      "A route module is imported only by src/index.ts, which mounts it behind the middleware.",
      { pathNot: "^src/index[.]ts$" },
      { path: "^src/(users/route|audit/routes|tokens/routes|meta/(health|openapi))[.]ts$" },
    ),
    forbid(
      "index-is-the-top",
      "src/index.ts is the Worker's entry: nothing in src/ imports it.",
      { path: "^src/" },
      { path: "^src/index[.]ts$" },
    ),
    forbid(
      "fakes-stand-alone",
      "Fakes play Village and the identity provider: they never import the Worker's code.",
      { path: "^fakes/" },
      { path: "^(src|tools|perf|test)/|^scripts/(?!lib/)" },
    ),
    forbid(
      "tools-read-src-only",
      "Build-time generators read src/ and tools/ only.",
      { path: "^tools/" },
      { path: "^(fakes|perf|scripts|test)/" },
    ),
    forbid(
      "tests-imported-by-tests",
      "Nothing but a test imports from test/.",
      { pathNot: "^test/" },
      { path: "^test/" },
    ),
    forbid(
      "perf-imported-by-perf",
      "Operator and developer entry points, tools and fakes do not depend on the bench.",
      { path: "^(scripts|tools|fakes|src)/" },
      { path: "^perf/" },
    ),
    forbid(
      "resolvable",
      "Every import resolves; cloudflare:* modules are the Workers runtime's and vitest pool's.",
      {},
      { couldNotResolve: true, pathNot: "^cloudflare:" },
    ),
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    exclude: { path: "^(node_modules|dist|\\.wrangler)/" },
    enhancedResolveOptions: {
      extensions: [".ts", ".js", ".json"],
      exportsFields: ["exports"],
      conditionNames: ["import", "require", "node", "default", "types"],
    },
  },
};
