#!/usr/bin/env bash
# Installs the Debian packages the test suite and benchmarks use, only those missing.
# Real encoders and players: ffmpeg, GStreamer (rtmp2sink, librtmp rtmpsink, hlsdemux),
# Chromium for hls.js; servers the tests start on 127.0.0.1: nginx (+ RTMP module),
# (+ njs: the signed-URL check of deploy/nginx-cache.conf),
# redis-server, prometheus (promtool); wrk for the HTTP benchmark; curl (HTTP/2) and
# openssl (certificates) for the TLS proxy and RTMPS/HTTPS tests.
set -euo pipefail

packages=(
  ffmpeg
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav
  chromium
  nginx libnginx-mod-rtmp libnginx-mod-http-js
  redis-server
  prometheus
  wrk
  curl openssl
)

missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: all present"
  exit 0
fi

echo "system packages: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "need root (or sudo) to install: ${missing[*]}" >&2; exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The distribution's services must not hold the ports or run in the background:
# the tests start their own instances on 127.0.0.1.
for svc in nginx redis-server prometheus; do
  (command -v systemctl >/dev/null && $SUDO systemctl disable --now "$svc" >/dev/null 2>&1) || true
  (command -v service >/dev/null && $SUDO service "$svc" stop >/dev/null 2>&1) || true
done
echo "system packages: done"
