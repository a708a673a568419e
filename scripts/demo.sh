#!/usr/bin/env bash
# The main job from nothing: install and start what is needed, serve the fixture base from a
# loopback registry, build fixtures/models/hello without a daemon, then load it and print one
# prediction when a Docker engine answers (else the OCI archive is written and named).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-env.sh
port=${OCIASM_DEMO_REGISTRY_PORT:-5000}
if ! curl -fs -o /dev/null "http://127.0.0.1:$port/v2/"; then
  echo "starting a loopback registry on 127.0.0.1:$port"
  setsid nohup python -m fixtures.registry serve --port "$port" --dir /var/tmp/ociasm-demo-registry \
    >/var/tmp/ociasm-demo-registry.log 2>&1 </dev/null &
  for _ in $(seq 50); do curl -fs -o /dev/null "http://127.0.0.1:$port/v2/" && break; sleep 0.2; done
fi
echo "base pushed: $(python -m fixtures.base push "127.0.0.1:$port")"

ociasm build fixtures/models/hello -t hello --registry-mirror "docker.io=127.0.0.1:$port"

if /usr/bin/docker info >/dev/null 2>&1; then
  python - <<'PY'
from fixtures.engine import serve
with serve("hello") as model:
    answer = model.predict({"text": "world", "times": 2})
    print(f"POST /predictions -> {answer.status_code} {answer.json()['output']!r}")
PY
fi
