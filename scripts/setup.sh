#!/usr/bin/env bash
# Create or reuse .venv/ and install what millstream needs: Python packages into
# the venv, and redis-server (Redis >= 7) through apt-get when missing and root.
# Usage: scripts/setup.sh [EXTRAS]   (default extras: dev,pipeline,triton)
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-dev,pipeline,triton}"

need_apt=()
command -v redis-server >/dev/null || need_apt+=(redis-server)
# Prometheus (with promtool) and Alertmanager for the alerting tests.
command -v promtool >/dev/null || need_apt+=(prometheus)
command -v prometheus-alertmanager >/dev/null || need_apt+=(prometheus-alertmanager)
# OpenCV (needed by rapidocr) loads libGL and GLib even without a screen.
[ -e /usr/lib/x86_64-linux-gnu/libGL.so.1 ] || [ -e /usr/lib/aarch64-linux-gnu/libGL.so.1 ] || need_apt+=(libgl1)
ldconfig -p 2>/dev/null | grep -q libgthread-2.0 || need_apt+=(libglib2.0-0)
# A CJK font for rendering translated text and generating sample images.
[ -e /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc ] || need_apt+=(fonts-noto-cjk)
# Chromium for the dashboard's browser tests (tests/browser): Playwright drives Debian's package,
# since its own browser download cannot work here.
command -v chromium >/dev/null || need_apt+=(chromium)
command -v openssl >/dev/null || need_apt+=(openssl)  # the TLS tests make their certificates
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing ${need_apt[*]} with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  else
    echo "setup: please install: ${need_apt[*]} (needs root and apt-get)" >&2
    exit 1
  fi
fi
version=$(redis-server --version | sed -n 's/.*v=\([0-9]*\)\..*/\1/p')
if [ "${version:-0}" -lt 7 ]; then
  echo "setup: redis-server >= 7 is required, found $(redis-server --version)" >&2
  exit 1
fi

python=${PYTHON:-python3.11}
command -v "$python" >/dev/null || python=python3
[ -x .venv/bin/python ] || "$python" -m venv .venv
stamp=.venv/.millstream-installed
want="$(cat pyproject.toml | sha1sum | cut -c1-12)-$extras"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/pip install -q --upgrade pip
  # torch first and pinned: the CPU build comes from a local file on these machines.
  case ",$extras," in *,triton,*) .venv/bin/pip install -q "torch==2.13.0" ;; esac
  .venv/bin/pip install -q -e ".[$extras]"
  echo "$want" > "$stamp"
fi
