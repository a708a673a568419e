#!/usr/bin/env bash
# Installs and starts what ociasm's tests and demo use on Debian 12, as root. Idempotent:
# Debian packages are installed only when missing, dockerd is started only when not answering,
# the fixture base image is built only when not cached (${OCIASM_FIXTURE_CACHE:-/var/cache/ociasm-fixtures}).
# Registries are not started here: each test session starts its own (tests/conftest.py).
set -euo pipefail
cd "$(dirname "$0")/.."

DEBS=(docker.io docker-registry skopeo umoci mmdebstrap)
DOCKER=/usr/bin/docker  # Debian's 20.10 client; a newer one earlier on PATH refuses BuildKit builds
DOCKERD_LOG=${DOCKERD_LOG:-/var/log/ociasm-dockerd.log}

missing=()
for deb in "${DEBS[@]}"; do
  dpkg-query -W -f='${Status}' "$deb" 2>/dev/null | grep -q 'install ok installed' || missing+=("$deb")
done
if ((${#missing[@]})); then
  echo "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! "$DOCKER" info >/dev/null 2>&1; then
  # A dockerd killed without cleanup leaves its pid file behind, and a new one refuses to start on it.
  if [[ -f /var/run/docker.pid ]] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
    rm -f /var/run/docker.pid
  fi
  echo "starting dockerd (log: $DOCKERD_LOG)"
  setsid nohup dockerd >"$DOCKERD_LOG" 2>&1 </dev/null &
  for _ in $(seq 60); do
    "$DOCKER" info >/dev/null 2>&1 && break
    sleep 1
  done
  if ! "$DOCKER" info >/dev/null 2>&1; then
    echo "dockerd did not answer within 60 s; last lines of $DOCKERD_LOG:" >&2
    tail -n 20 "$DOCKERD_LOG" >&2
    exit 1
  fi
fi

python -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -e '.[test]'

echo "fixture base image: $(python -m fixtures.base build)"
