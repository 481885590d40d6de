"""The ``mediasrv`` command: ``mediasrv serve [-c FILE] [--set KEY=VALUE ...]``."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import signal
import sys

from aiohttp import web

from mediasrv import __version__
from mediasrv.app.root import create_app
from mediasrv.config import Config, ConfigError, load_config, redacted, schema_text
from mediasrv.httpkit import send_timeout
from mediasrv.httpkit.keys import RTMP_SERVER
from mediasrv.tls import http_context

log = logging.getLogger("mediasrv")

#: Exit status for a bad command line or configuration.
EXIT_CONFIG = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mediasrv", description="A self-hosted live-streaming server.")
    parser.add_argument("--version", action="version", version=f"mediasrv {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the server")
    serve.add_argument("-c", "--config", metavar="FILE", help="YAML configuration (default: embedded defaults)")
    serve.add_argument(
        "--set", metavar="KEY=VALUE", action="append", default=[], dest="overrides",
        help="override a dotted key, e.g. --set rtmp.listen=127.0.0.1:19350 or --set auth.keys.SECRET=alice",
    )
    check = commands.add_parser(
        "check-config", help="validate a configuration (file, MEDIASRV_* variables, --set) and print it, "
                             "secrets as ***")
    check.add_argument("-c", "--config", metavar="FILE")
    check.add_argument("--set", metavar="KEY=VALUE", action="append", default=[], dest="overrides")
    commands.add_parser("config-schema", help="print the JSON Schema of the configuration file "
                                              "(config/mediasrv.schema.json)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "config-schema":
        # Independent of any configuration: the schema comes from the models alone.
        sys.stdout.write(schema_text())
        return 0
    try:
        config = load_config(args.config, args.overrides)
    except ConfigError as exc:
        print(f"mediasrv: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.command == "check-config":
        print(json.dumps(redacted(config), indent=2))
        return 0
    logging.basicConfig(
        level=config.log.level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return run_event_loop(serve(config))
    except KeyboardInterrupt:
        return 0


def run_event_loop(main):
    """Run ``main`` on uvloop when it is installed (a C event loop: several times less
    CPU per socket read than the pure-Python selector loop), else on asyncio's own."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency; this is for odd platforms
        return asyncio.run(main)
    return uvloop.run(main)


async def serve(config: Config) -> int:
    """Run until SIGINT/SIGTERM; return the exit status."""
    config.data_path.mkdir(parents=True, exist_ok=True)
    try:
        ssl_context = http_context(config)
    except ConfigError as exc:
        print(f"mediasrv: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    app = create_app(config)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=5)
    try:
        await runner.setup()
        address = config.http.address
        site = web.TCPSite(runner, address.host, address.port, reuse_address=True, ssl_context=ssl_context)
        await site.start()
    except ConfigError as exc:  # the RTMPS certificate, loaded when its listener starts
        print(f"mediasrv: configuration error: {exc}", file=sys.stderr)
        await runner.cleanup()
        return EXIT_CONFIG
    except OSError as exc:
        print(f"mediasrv: cannot listen: {exc.strerror or exc}", file=sys.stderr)
        await runner.cleanup()
        return 1
    http_port = runner.addresses[0][1]
    rtmp_server = app.get(RTMP_SERVER)  # none on a pure edge (cluster.ingest: false)
    rtmp_port = rtmp_server.port if rtmp_server is not None else 0
    tls_port = rtmp_server.tls_port if rtmp_server is not None else None
    print(startup_banner(config, http_port, rtmp_port, tls_port), flush=True)
    sweeper = send_timeout.watch(runner, config.http.send_timeout)
    # Everything allocated so far (modules, app) lives for the whole run: move it out of
    # the collector's generations so collections triggered by per-packet objects stay cheap.
    gc.collect()
    gc.freeze()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down")
    await sweeper.stop()
    await runner.cleanup()
    return 0


def startup_banner(config: Config, http_port: int, rtmp_port: int, rtmps_port: int | None = None) -> str:
    """What a creator types into OBS and where viewers watch."""
    rtmp_host = _display_host(config.rtmp.address.host)
    scheme = "https" if config.http.tls_cert else "http"
    http_base = config.http.public_url.rstrip("/") or f"{scheme}://{_display_host(config.http.address.host)}:{http_port}"
    mode = config.auth.mode
    key_form = {
        "open": "any stream name, e.g. mystream (it is also the public name)",
        "keys": "a secret key from auth.keys (viewers see its public name)",
        "webhook": "a key that your auth webhook accepts",
        "accounts": "your personal key, shown in the studio (below; viewers see your handle)",
    }[mode]
    # What goes after the app in the encoder's URL: the same thing as the OBS stream key.
    example = {"open": "mystream", "keys": "<secret key>", "webhook": "<key>", "accounts": "<your stream key>"}[mode]
    # Where viewers watch: the channel page (its name is the creator's handle in accounts
    # mode), and the playlist for players.
    watch_name = "<handle>" if mode == "accounts" else "<name>"
    if not config.cluster.ingest:
        # A pure edge takes no publishers: say where viewers watch, and where to publish.
        return "\n".join([
            f"mediasrv {__version__} is running as an edge (cluster.ingest: false): no RTMP listener;",
            "  publish to an ingest node of the cluster",
            f"  Watch:  {http_base}/live/<name>/index.m3u8",
            f"  API:    {http_base}/api/live",
        ])
    return "\n".join(
        [
            f"mediasrv {__version__} is running",
            f"  OBS  > Settings > Stream > Service: Custom",
            f"         Server:     rtmp://{rtmp_host}:{rtmp_port}/{config.rtmp.app}",
            f"         Stream Key: {key_form}",
            *([f"         RTMPS:      rtmps://{rtmp_host}:{rtmps_port or config.rtmp.tls_address.port}/{config.rtmp.app}"]
              if config.rtmp.tls_address is not None else []),
            # The first segment (and so the first picture a viewer gets) waits for the
            # encoder's second keyframe: OBS's "auto" is 250 frames, 8 s at 30 fps.
            f"         Keyframe Interval: {config.hls.segment_duration:g} s"
            " (Settings > Output, Output Mode: Advanced; not 0/auto)",
            # OBS 30+ and browsers publish over WHIP with the same key as a bearer token.
            *([f"  WHIP (OBS 30+ Service: WHIP, browsers): {http_base}/whip, Bearer Token: the same stream key"]
              if config.webrtc.enabled else []),
            *([f"  Studio: {http_base}/studio (sign up or log in as a creator: your stream key, title, go-live status)"]
              if mode == "accounts" else []),
            f"  FFmpeg: ffmpeg -re -i INPUT -c copy -f flv rtmp://{rtmp_host}:{rtmp_port}/{config.rtmp.app}/{example}",
            f"  Page:   {http_base}/watch/{watch_name} (the channel page viewers open)",
            f"  Watch:  {http_base}/live/{watch_name}/index.m3u8 (HLS, for players)",
            f"  API:    {http_base}/api/streams",
        ]
    )


def _display_host(host: str) -> str:
    if host in ("0.0.0.0", "::", ""):
        # Listening on every interface: localhost works on this machine; other machines
        # use this machine's address in its place.
        return "localhost"
    return f"[{host}]" if ":" in host else host


if __name__ == "__main__":
    sys.exit(main())
