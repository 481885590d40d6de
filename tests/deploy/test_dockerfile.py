"""The Dockerfile, deploy/compose.yaml and the README's Docker commands, checked against
each other and against the real code (Docker itself cannot run on the test machines):
the ports and volume the README maps are the ones the image declares and the config
defaults use, the entrypoint's and compose's ``--set`` arguments pass the real config
loader, the health check asks for a route the app has, the user is not root, every file
the build copies exists and is not excluded from the build context, and the build step
(``pip wheel .``) makes a wheel holding the package and its web assets."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from mediasrv.cli import build_parser
from mediasrv.config import load_config
from mediasrv.app.root import create_app
from tests.support.tools import require_tool

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "deploy" / "compose.yaml"
NGINX_CONF = ROOT / "deploy" / "nginx-cache.conf"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile: comments dropped, continuations joined."""
    result, pending = [], ""
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, rest = full.partition(" ")
        result.append((keyword.upper(), rest.strip()))
    assert not pending, "a continuation line ends the Dockerfile"
    return result


def stages(items: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """The instructions split at each FROM (each list starts with its FROM)."""
    out: list[list[tuple[str, str]]] = []
    for keyword, rest in items:
        if keyword == "FROM":
            out.append([])
        assert out, "the Dockerfile must start with FROM"
        out[-1].append((keyword, rest))
    return out


def exec_form(rest: str) -> list[str]:
    value = json.loads(rest)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), rest
    return value


def set_arguments(args: list[str]) -> list[str]:
    """The KEY=VALUE of every ``--set KEY=VALUE`` in an argument list (as mediasrv parses it)."""
    return build_parser().parse_args(["serve", *args]).overrides


def readme_docker_commands() -> list[list[str]]:
    """The shell commands of the README's "Docker" section, split like a shell would."""
    text = (ROOT / "README.md").read_text()
    section = re.search(r"^## Docker\n(.*?)(?=^## )", text, flags=re.MULTILINE | re.DOTALL)
    assert section, "README.md has no '## Docker' section"
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", section.group(1), flags=re.DOTALL):
        commands += [shlex.split(line) for line in block.splitlines() if line.strip()]
    return commands


def dockerignore_excludes(path: str) -> bool:
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    parts = Path(path).parts
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    return any(fnmatch.fnmatch(prefix, pattern.removeprefix("**/")) or fnmatch.fnmatch(prefix, pattern)
               for pattern in patterns if not pattern.startswith("!") for prefix in prefixes)


@pytest.fixture(scope="module")
def dockerfile():
    items = instructions(DOCKERFILE.read_text())
    return items, stages(items)


def test_multi_stage_slim_python_the_project_supports(dockerfile):
    items, parts = dockerfile
    assert len(parts) >= 2, "a build stage and a runtime stage"
    requires = re.search(r'requires-python = ">=(\d+)\.(\d+)"', (ROOT / "pyproject.toml").read_text())
    for stage in parts:
        image = stage[0][1].split()[0]
        match = re.fullmatch(r"python:(\d+)\.(\d+)-slim", image)
        assert match, f"{image}: expected a python:X.Y-slim base"
        assert tuple(map(int, match.groups())) >= tuple(map(int, requires.groups()))
    builder = parts[0][0][1].split()
    assert builder[1:2] == ["AS"] or builder[1:2] == ["as"]
    name = builder[2]
    final = parts[-1]
    assert any(k == "COPY" and rest.startswith(f"--from={name} ") for k, rest in final), \
        "the runtime stage takes the build stage's output"
    # The runtime stage builds nothing: it installs the wheels, offline.
    runs = " ".join(rest for k, rest in final if k == "RUN")
    assert "pip install" in runs and "--no-index" in runs and "pip wheel" not in runs


def test_copied_files_exist_and_are_in_the_build_context(dockerfile):
    items, _ = dockerfile
    for keyword, rest in items:
        if keyword != "COPY" or rest.startswith("--from="):
            continue
        *sources, _ = rest.split()
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: no such file"
            assert not dockerignore_excludes(source), f"COPY {source}: excluded by .dockerignore"


def test_runs_as_an_unprivileged_user(dockerfile):
    _, parts = dockerfile
    users = [rest for k, rest in parts[-1] if k == "USER"]
    assert users, "the runtime stage sets USER"
    assert users[-1].split(":")[0] not in ("root", "0")
    runs = " ".join(rest for k, rest in parts[-1] if k == "RUN")
    assert re.search(rf"useradd\b.*\b{re.escape(users[-1])}\b", runs), "the user is created in the image"


def port_specs(specs) -> tuple[set[int], set[tuple[int, int]]]:
    """TCP ports and UDP ranges of EXPOSE items or ``-p`` values (``8080``, ``8080:8080``,
    ``40000-40099/udp``, ``40000-40099:40000-40099/udp``: the container's side)."""
    tcp, udp = set(), set()
    for spec in specs:
        ports, _, protocol = spec.split(":")[-1].partition("/")
        first, _, last = ports.partition("-")
        if protocol == "udp":
            udp.add((int(first), int(last or first)))
        else:
            assert protocol in ("", "tcp") and not last, spec
            tcp.add(int(first))
    return tcp, udp


def image_entrypoint_config(final):
    entrypoint = exec_form(next(rest for k, rest in final if k == "ENTRYPOINT"))
    return entrypoint, load_config(None, set_arguments(entrypoint[2:]))


def test_ports_volume_and_entrypoint_match_the_config(dockerfile):
    _, parts = dockerfile
    final = parts[-1]
    entrypoint, config = image_entrypoint_config(final)  # the real loader accepts its --set
    assert entrypoint[:2] == ["mediasrv", "serve"]
    assert 'mediasrv = "mediasrv.cli:main"' in (ROOT / "pyproject.toml").read_text()
    tcp, udp = port_specs(port for k, rest in final if k == "EXPOSE" for port in rest.split())
    assert tcp == {config.rtmp.address.port, config.http.address.port}
    # WHIP's WebRTC media: the range the image tells the server it has (webrtc.udp_ports).
    assert udp == {config.webrtc.port_range}
    volumes = [rest for k, rest in final if k == "VOLUME"]
    assert volumes == [str(config.data_path)] == ["/data"]


def test_healthcheck_asks_for_a_route_the_app_serves(dockerfile, tmp_path):
    _, parts = dockerfile
    check = next(rest for k, rest in parts[-1] if k == "HEALTHCHECK")
    url = re.search(r"http://127\.0\.0\.1:(\d+)(/[\w/.-]*)", check)
    assert url, check
    config = load_config(None, [f"data_dir={tmp_path}"])
    assert int(url.group(1)) == config.http.address.port
    app = create_app(config)
    paths = {resource.canonical for resource in app.router.resources()}
    assert url.group(2) in paths
    # The command runs in the image's Python (the slim image has no curl): it must at
    # least be valid Python that fetches that URL.
    command = exec_form(check[check.index("CMD") + 3:].strip())
    assert command[:2] == ["python", "-c"]
    compile(command[2], "HEALTHCHECK", "exec")


def test_readme_commands_match_the_image(monkeypatch):
    commands = readme_docker_commands()
    builds = [c for c in commands if c[:2] == ["docker", "build"]]
    runs = [c for c in commands if c[:2] == ["docker", "run"]]
    composes = [c for c in commands if c[:2] == ["docker", "compose"]]
    assert builds and runs and composes, commands
    build = builds[0]
    tag = build[build.index("-t") + 1]
    assert build[-1] == "." and (ROOT / "Dockerfile").is_file()
    parts = stages(instructions(DOCKERFILE.read_text()))
    final = parts[-1]
    exposed = port_specs(port for k, rest in final if k == "EXPOSE" for port in rest.split())
    _, config = image_entrypoint_config(final)
    volume = next(rest for k, rest in final if k == "VOLUME")
    for run in runs:
        args = run[2:]
        published = port_specs(args[i + 1] for i, a in enumerate(args) if a == "-p")
        assert published == exposed, f"{' '.join(run)}: publishes {published}, the image exposes {exposed}"
        # The kernel's ephemeral range in the container is the WebRTC range (docs/whip.md).
        sysctls = dict(args[i + 1].split("=", 1) for i, a in enumerate(args) if a == "--sysctl")
        first, last = config.webrtc.port_range
        assert sysctls.get("net.ipv4.ip_local_port_range", "").split() == [str(first), str(last)], run
        mounts = [args[i + 1] for i, a in enumerate(args) if a == "-v"]
        assert [m.split(":")[1] for m in mounts] == [volume]
        image_at = next(i for i, a in enumerate(args) if a == tag)
        with monkeypatch.context() as env:  # -e NAME=VALUE: MEDIASRV_* variables the loader reads
            for name, _, value in (args[i + 1].partition("=") for i, a in enumerate(args[:image_at]) if a == "-e"):
                env.setenv(name, value)
            load_config(None, set_arguments(args[image_at + 1:]))  # what follows goes to mediasrv serve
    for compose in composes:
        path = compose[compose.index("-f") + 1]
        assert (ROOT / path).resolve() == COMPOSE


def compose_services() -> dict:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def mediasrv_services(services: dict) -> dict:
    """The services that run the image of the top-level Dockerfile."""
    return {name: s for name, s in services.items() if "build" in s
            and (COMPOSE.parent / s["build"]["context"] / s["build"]["dockerfile"]).resolve() == DOCKERFILE}


def test_compose_has_redis_two_mediasrv_nodes_and_nginx():
    services = compose_services()
    nodes = mediasrv_services(services)
    assert len(nodes) == 2
    # Every service that runs an image of ours builds it (none is pulled from a registry).
    assert all("build" in s for s in services.values() if s["image"] in {n["image"] for n in nodes.values()})
    assert all(n["networks"] == ["mediasrv"] for n in nodes.values())
    assert services["redis"]["image"].startswith("redis:")
    assert services["nginx"]["image"].startswith("nginx:")


def test_compose_settings_pass_the_real_config_loader():
    """Every node's ``--set`` arguments (after the image's entrypoint) load; the keys
    point at the services of the same file."""
    services = compose_services()
    entry = exec_form(next(rest for k, rest in instructions(DOCKERFILE.read_text()) if k == "ENTRYPOINT"))
    nginx_address = services["nginx"]["networks"]["mediasrv"]["ipv4_address"]
    for name, service in mediasrv_services(services).items():
        overrides = set_arguments(entry[2:] + service["command"])
        config = load_config(None, overrides)  # raises ConfigError naming a bad key
        settings = dict(item.split("=", 1) for item in overrides)
        assert settings["cluster.redis_url"].startswith("redis://redis:")
        assert settings["cluster.node_id"] == name
        assert settings["cluster.advertise_url"] == f"http://{name}:{config.http.address.port}"
        assert config.http.trusted_proxies == (f"{nginx_address}/32",)


def test_compose_ingest_node_takes_whip_media_on_the_images_udp_range():
    services = compose_services()
    ingest = services["ingest"]
    _, config = image_entrypoint_config(stages(instructions(DOCKERFILE.read_text()))[-1])
    first, last = config.webrtc.port_range
    tcp, udp = port_specs(ingest["ports"])
    assert udp == {(first, last)} and config.http.address.port in {int(p.split(":")[-1]) for p in ingest["ports"]
                                                                   if "/" not in p}
    assert ingest["sysctls"]["net.ipv4.ip_local_port_range"].split() == [str(first), str(last)]
    assert "MEDIASRV_WEBRTC__PUBLIC_ADDRESS" in ingest["environment"]


def test_compose_nginx_runs_the_shipped_cache_config_pointed_at_both_nodes(tmp_path):
    sed = require_tool("sed")
    services = compose_services()
    nginx = services["nginx"]
    mount = next(v for v in nginx["volumes"] if v.startswith("./nginx-cache.conf:"))
    assert (COMPOSE.parent / mount.split(":")[0]).resolve() == NGINX_CONF
    inside = mount.split(":")[1]
    script = nginx["command"][2].replace("$$", "$")  # compose's escape for "$"
    words = shlex.split(script)
    assert words[:2] == ["sed", "-e"] and words[3] == inside and words[4] == ">"
    # Run the very sed expression on the shipped file: exactly the upstream line changes.
    result = subprocess.run([sed, "-e", words[2], str(NGINX_CONF)], capture_output=True, text=True, check=True)
    before, after = NGINX_CONF.read_text().splitlines(), result.stdout.splitlines()
    changed = [(a, b) for a, b in zip(before, after) if a != b]
    assert len(before) == len(after) and len(changed) == 1, changed
    servers = re.findall(r"server (\w+):(\d+);", changed[0][1])
    nodes = mediasrv_services(services)
    assert {host for host, _ in servers} == set(nodes)
    assert {int(port) for _, port in servers} == {8080}
    assert words[5] == "/etc/nginx/conf.d/default.conf"
    listen = re.search(r"^\s+listen (\d+);$", NGINX_CONF.read_text(), flags=re.MULTILINE)
    assert nginx["ports"] == [f"8080:{listen.group(1)}"]


def test_the_build_step_makes_a_wheel_with_the_web_assets(tmp_path):
    """``pip wheel .`` of the build stage, for mediasrv itself (dependencies come as
    published wheels): the wheel holds the package, hls.js and the console script."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        (source / name).write_bytes((ROOT / name).read_bytes())
    shutil.copytree(ROOT / "mediasrv", source / "mediasrv", ignore=shutil.ignore_patterns("__pycache__"))
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-cache-dir",
         "--wheel-dir", str(tmp_path / "wheels"), str(source)],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    wheel = next((tmp_path / "wheels").glob("mediasrv-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "mediasrv/cli.py" in names and "mediasrv/app/root.py" in names
    assert any(n.startswith("mediasrv/web/vendor/hls.js/") and n.endswith(".js") for n in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "mediasrv = mediasrv.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
