# Shared by scripts/demo and scripts/test: install what is missing, then
# configure and build into build/. Sourced, not run.
set -euo pipefail

SEEDPOOL_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SEEDPOOL_BUILD="${SEEDPOOL_BUILD:-$SEEDPOOL_ROOT/build}"

# Debian 12 packages the build and the tests need.
SEEDPOOL_PACKAGES=(
  cmake ninja-build g++ pkg-config python3 parallel
  libboost-context-dev libfmt-dev libcli11-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev librapidcheck-dev libbenchmark-dev
  libgoogle-perftools-dev
)

seedpool_install_packages() {
  local missing=()
  local package
  for package in "${SEEDPOOL_PACKAGES[@]}" "$@"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$package")
    fi
  done
  if ((${#missing[@]} == 0)); then
    return 0
  fi
  echo "seedpool: installing ${missing[*]}"
  local sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    sudo=(sudo)
  fi
  if ! DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"; then
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get update
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
  fi
}

# seedpool_build [extra cmake args...]: configure once, then build incrementally.
seedpool_build() {
  local jobs
  jobs="$(nproc)"
  if [[ ! -f "$SEEDPOOL_BUILD/build.ninja" ]]; then
    cmake -S "$SEEDPOOL_ROOT" -B "$SEEDPOOL_BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DSEEDPOOL_WERROR=ON "$@"
  fi
  cmake --build "$SEEDPOOL_BUILD" --parallel "$jobs"
}
