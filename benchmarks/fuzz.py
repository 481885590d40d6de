"""Long coverage-guided fuzzing run of every parser that reads untrusted bytes.

    PYTHONPATH=$PWD python benchmarks/fuzz.py --seconds 40            # every target, 40 s each
    PYTHONPATH=$PWD python benchmarks/fuzz.py --seconds 300 --targets amf0,amf3

Each target of ``tests/fuzz/targets.py`` runs in its own process under atheris
(libFuzzer with Python coverage of the ``mediasrv`` package), seeded with valid inputs;
a target's only allowed outcomes are a result or the package's typed error, so any other
exception is a crash: libFuzzer stops that target and keeps the input as
``crash-*`` in the output directory. Without atheris a plain mutation loop (random byte
edits of the seeds, no coverage feedback) runs instead, so the script still works anywhere.

Prints a table: target, engine, executions, executions/s, new coverage features, crashes.
Exit status 1 when any target crashed.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _worker_atheris(name: str, libfuzzer_args: list[str]) -> None:
    import atheris

    # Only mediasrv is instrumented: coverage feedback comes from the parsers, not from
    # PyAV, PyYAML or hypothesis.
    with atheris.instrument_imports(include=["mediasrv"]):
        import mediasrv.config  # noqa: F401
        import mediasrv.hls.reload  # noqa: F401
        import mediasrv.community.chat.rules  # noqa: F401
        import mediasrv.media  # noqa: F401
        import mediasrv.rtmp.connection  # noqa: F401
        import mediasrv.community.chat.service  # noqa: F401
        import mediasrv.images  # noqa: F401
        import mediasrv.community.moderation.service  # noqa: F401
        from tests.fuzz.targets import TARGETS
    target = TARGETS[name]
    if name == "chat_requests":
        from tests.fuzz.targets import chat_harness

        chat_harness()
    atheris.Setup([sys.argv[0], *libfuzzer_args], target.run)
    atheris.Fuzz()


def _worker_mutation(name: str, seconds: float, out_dir: str) -> None:
    """No atheris: random edits of the seeds (and random bytes) for ``seconds``."""
    from tests.fuzz.targets import TARGETS

    target = TARGETS[name]
    seeds = target.seeds() or [b""]
    rng = random.Random(0)
    runs = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if rng.random() < 0.2:
            data = rng.randbytes(rng.randint(0, target.max_size))
        else:
            data = bytearray(rng.choice(seeds))
            for _ in range(rng.randint(1, 8)):
                i = rng.randrange(len(data) + 1)  # len(data): append
                op = rng.randrange(4)
                if op == 0:
                    data[i:i + 1] = bytes((rng.randrange(256),))
                elif op == 1:
                    data[i:i] = rng.randbytes(rng.randint(1, 4))
                elif op == 2:
                    del data[i:i + rng.randint(1, 8)]
                else:
                    data[i:i + 4] = rng.choice([b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x7f\xff\xff\xff"])
            if rng.random() < 0.3:
                data = data[:rng.randint(0, len(data))]
            data = bytes(data)
        runs += 1
        try:
            target.run(data)
        except Exception:
            path = Path(out_dir) / f"crash-{name}-{runs}"
            path.write_bytes(data)
            traceback.print_exc()
            print(f"Test unit written to {path}", file=sys.stderr)
            print(f"Done {runs} runs", file=sys.stderr)
            sys.exit(1)
    print(f"Done {runs} runs", file=sys.stderr)


def _have_atheris() -> bool:
    try:
        import atheris  # noqa: F401
    except ImportError:
        return False
    return True


def run_target(name: str, seconds: float, out_dir: Path, engine: str) -> dict:
    """Fuzz one target in a child process; return its figures."""
    from tests.fuzz.targets import TARGETS

    corpus = out_dir / "corpus" / name
    corpus.mkdir(parents=True, exist_ok=True)
    for i, seed in enumerate(TARGETS[name].seeds()):
        (corpus / f"seed-{i}").write_bytes(seed)
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    cmd = [sys.executable, __file__, "--worker", name, "--engine", engine, "--seconds", str(seconds),
           "--out", str(out_dir)]
    if engine == "atheris":
        cmd += ["--", f"-max_total_time={int(seconds)}", f"-max_len={max(4096, TARGETS[name].max_size * 4)}",
                "-rss_limit_mb=2048", "-timeout=20", f"-artifact_prefix={out_dir}/crash-{name}-", str(corpus)]
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=out_dir, env=env, capture_output=True, text=True, errors="replace",
                          timeout=seconds + 300)
    elapsed = time.monotonic() - started
    log = proc.stderr
    (out_dir / f"{name}.log").write_text(log + proc.stdout)
    runs = [int(x) for x in re.findall(r"Done (\d+) runs", log)]
    if not runs:  # killed before the summary: the last status line
        runs = [int(x) for x in re.findall(r"^#(\d+)\s", log, re.M)[-1:]]
    features = re.findall(r"ft: (\d+)", log)
    crashed = proc.returncode != 0
    return {"target": name, "engine": engine, "runs": runs[-1] if runs else 0, "seconds": elapsed,
            "features": int(features[-1]) if features else None, "crashes": int(crashed),
            "log": str(out_dir / f"{name}.log"), "returncode": proc.returncode}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1:]
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0, help="fuzzing time per target")
    parser.add_argument("--targets", default="", help="comma-separated target names (default: all)")
    parser.add_argument("--engine", choices=["auto", "atheris", "mutation"], default="auto")
    parser.add_argument("--out", default="", help="directory for corpora, logs and crash inputs")
    parser.add_argument("--jobs", type=int, default=1, help="targets fuzzed at the same time")
    parser.add_argument("--worker", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))

    if args.worker:
        if args.engine == "atheris":
            _worker_atheris(args.worker, extra)
        else:
            _worker_mutation(args.worker, args.seconds, args.out)
        return 0

    from tests.fuzz.targets import TARGETS

    engine = args.engine if args.engine != "auto" else ("atheris" if _have_atheris() else "mutation")
    names = [n for n in args.targets.split(",") if n] or list(TARGETS)
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        parser.error(f"unknown targets {unknown}; known: {', '.join(TARGETS)}")
    out_dir = Path(args.out or tempfile.mkdtemp(prefix="mediasrv-fuzz-")).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    print(f"engine {engine}, {args.seconds:g} s per target, output in {out_dir}", flush=True)
    print(f"{'target':<22} {'engine':<9} {'executions':>11} {'exec/s':>8} {'features':>9} {'crashes':>8}", flush=True)

    from concurrent.futures import ThreadPoolExecutor

    results = []
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for r in pool.map(lambda n: run_target(n, args.seconds, out_dir, engine), names):
            results.append(r)
            rate = r["runs"] / max(r["seconds"], 1e-9)
            ft = "-" if r["features"] is None else str(r["features"])
            print(f"{r['target']:<22} {r['engine']:<9} {r['runs']:>11} {rate:>8.0f} {ft:>9} {r['crashes']:>8}"
                  + (f"   see {r['log']}" if r["crashes"] else ""), flush=True)
    total = sum(r["runs"] for r in results)
    crashes = sum(r["crashes"] for r in results)
    print(f"{'total':<22} {'':<9} {total:>11} {'':>8} {'':>9} {crashes:>8}", flush=True)
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
