#!/usr/bin/env bash
# Builds native/re2size (a small Node-API addon around Debian's libre2) into
# native/re2size/build/ (gitignored). The translator asks it for RE2's ProgramSize(), the
# number Envoy checks against re2.max_program_size.error_level before accepting a regex.
# Installs libre2-dev with apt-get when it is missing; skips the build when up to date.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$root/native/re2size"
out="$dir/build/Release/re2size.node"

if ! dpkg -s libre2-dev >/dev/null 2>&1 && [ ! -f /usr/include/re2/re2.h ]; then
  if ! command -v apt-get >/dev/null; then
    echo "re2size: RE2 headers and library are needed (Debian/Ubuntu: libre2-dev)" >&2
    exit 1
  fi
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "re2size: installing libre2-dev" >&2
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y --no-install-recommends libre2-dev >&2 ||
    { $sudo apt-get update >&2 && $sudo apt-get install -y --no-install-recommends libre2-dev >&2; }
fi

check() { node -e 'if (require(process.argv[1]).programSize("a") < 1) process.exit(1);' "$out"; }
if [ -f "$out" ] && [ "$out" -nt "$dir/re2size.cc" ] && [ "$out" -nt "$dir/binding.gyp" ] && check 2>/dev/null; then
  exit 0
fi

# node-gyp: the project's if it has one, else the copy npm ships with
gyp="$root/node_modules/node-gyp/bin/node-gyp.js"
[ -f "$gyp" ] || gyp="${npm_config_node_gyp:-$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js}"
# headers of the running node (Debian: /usr/include/node, nodejs.org builds: <prefix>/include/node),
# so no download is needed; node-gyp fetches them only when they are absent
nodedir="$(node -p 'require("path").resolve(process.execPath, "../..")')"
args=()
[ -f "$nodedir/include/node/node_api.h" ] && args+=("--nodedir=$nodedir")
echo "re2size: building $out" >&2
(cd "$dir" && node "$gyp" rebuild "${args[@]}" >&2)
check
