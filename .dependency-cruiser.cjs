/**
 * The import rules of docs/architecture.md, checked by `npm run lint` (dependency-cruiser).
 * Layers inside src/, lowest first: http/ -> model/ -> config.ts -> auth/ -> audit/ -> users/,
 * meta/ -> index.ts. A folder imports only its own files and the layers below it. Type-only
 * imports count (`tsPreCompilationDeps`): a type is a dependency too.
 */
const below = {
  http: "^src/http/",
  model: "^src/(http|model)/",
  config: "^src/(http|model)/|^src/config[.]ts$",
  auth: "^src/(http|model|auth)/|^src/config[.]ts$",
  audit: "^src/(http|model|auth|audit)/|^src/config[.]ts$",
  users: "^src/(http|model|auth|users)/|^src/config[.]ts$|^src/audit/record[.]ts$",
  meta: "^src/(http|meta)/",
};

/** A rule: files under `from` import from src/ only what `allowed` matches. */
const layer = (name, from) => ({
  name: `layer-${name}`,
  comment: `src/${name} may import only ${below[name]} (docs/architecture.md)`,
  severity: "error",
  from: { path: from },
  to: { path: "^src/", pathNot: below[name] },
});

module.exports = {
  forbidden: [
    {
      name: "no-circular",
      comment: "No import cycle, type-only imports included.",
      severity: "error",
      from: {},
      to: { circular: true },
    },
    {
      name: "src-ships-alone",
      comment: "What wrangler bundles never imports build tools, fakes, perf, scripts or tests.",
      severity: "error",
      from: { path: "^src/" },
      to: { path: "^(tools|fakes|perf|scripts|test)/" },
    },
    layer("http", "^src/http/"),
    layer("model", "^src/model/"),
    layer("config", "^src/config[.]ts$"),
    layer("auth", "^src/auth/"),
    layer("audit", "^src/audit/"),
    layer("users", "^src/users/"),
    layer("meta", "^src/meta/"),
    {
      name: "routes-mounted-by-index-only",
      comment: "A route module is imported only by src/index.ts, which mounts it behind the middleware.",
      severity: "error",
      from: { pathNot: "^src/index[.]ts$" },
      to: { path: "^src/(users/route|audit/routes|meta/(health|openapi))[.]ts$" },
    },
    {
      name: "index-is-the-top",
      comment: "src/index.ts is the Worker's entry: nothing in src/ imports it.",
      severity: "error",
      from: { path: "^src/" },
      to: { path: "^src/index[.]ts$" },
    },
    {
      name: "fakes-stand-alone",
      comment: "Fakes play Village and the identity provider: they never import the Worker's code.",
      severity: "error",
      from: { path: "^fakes/" },
      to: { path: "^(src|tools|perf|test)/|^scripts/(?!lib/)" },
    },
    {
      name: "tools-read-src-only",
      comment: "Build-time generators read src/ and tools/ only.",
      severity: "error",
      from: { path: "^tools/" },
      to: { path: "^(fakes|perf|scripts|test)/" },
    },
    {
      name: "perf-and-scripts-not-tests",
      comment: "Nothing but a test imports from test/.",
      severity: "error",
      from: { pathNot: "^test/" },
      to: { path: "^test/" },
    },
    {
      name: "scripts-not-perf",
      comment: "Operator and developer entry points do not depend on the bench.",
      severity: "error",
      from: { path: "^(scripts|tools|fakes|src)/" },
      to: { path: "^perf/" },
    },
    {
      name: "resolvable",
      severity: "error",
      from: {},
      comment: "Every import resolves; cloudflare:* modules are the Workers runtime's and vitest pool's.",
      to: { couldNotResolve: true, pathNot: "^cloudflare:" },
    },
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
