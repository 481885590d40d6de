# mediasrv container image (README.md, "Docker").
#
#   docker build -t mediasrv .
#   docker run -p 1935:1935 -p 8080:8080 -p 40000-40099:40000-40099/udp \
#     --sysctl net.ipv4.ip_local_port_range="40000 40099" -v mediasrv-data:/data mediasrv
#
# Ports: 1935 RTMP ingest (rtmp.listen), 8080 HLS, API, chat, /metrics and WHIP ingest
# (http.listen), 40000-40099/udp the WebRTC media of WHIP publishers (webrtc.udp_ports).
# WebRTC (aiortc) binds the kernel's ephemeral ports and has no port option, so the
# container's net.ipv4.ip_local_port_range must be that range (--sysctl above; the
# server warns at start when it is not), and clients outside reach it at the host's
# address: set MEDIASRV_WEBRTC__PUBLIC_ADDRESS to it (docs/whip.md, "Ports").
# Volume: /data (data_dir): the SQLite database, recordings, thumbnails and uploads.
# Configure with MEDIASRV_<SECTION>__<KEY> variables (README.md, "Configuration"), e.g.
#   docker run ... -e MEDIASRV_AUTH__MODE=accounts -e MEDIASRV_HTTP__PUBLIC_URL=https://live.example.com mediasrv
# or pass arguments after the image name to `mediasrv serve`, e.g.
#   docker run ... mediasrv --set auth.mode=accounts --set http.public_url=https://live.example.com
# tests/deploy/test_dockerfile.py checks this file against the README and the config.

# --- build: wheels of mediasrv and of every dependency ---------------------------------
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY mediasrv ./mediasrv
# PyAV, numpy and uvloop come as binary wheels (PyAV's bundles FFmpeg): no compiler needed.
# constraints.txt (`make lock`) pins every dependency: the image gets the versions the
# test suite ran with.
RUN pip wheel --no-cache-dir --wheel-dir /wheels -c constraints.txt .

# --- runtime: the wheels installed, nothing else ----------------------------------------
FROM python:3.11-slim
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index /wheels/*.whl \
    && rm -rf /wheels \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin mediasrv \
    && mkdir -p /data \
    && chown mediasrv /data
COPY config/mediasrv.yaml /etc/mediasrv/mediasrv.example.yaml
COPY config/mediasrv.schema.json /etc/mediasrv/mediasrv.schema.json
USER mediasrv
WORKDIR /data
VOLUME /data
EXPOSE 1935 8080 40000-40099/udp
# /healthz answers 200 while the server runs (python: the slim image has no curl). It
# asks the default http.listen port: change it here too if you move the listener.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
ENTRYPOINT ["mediasrv", "serve", "--set", "data_dir=/data", "--set", "webrtc.udp_ports=40000-40099"]
