"""Run the tests marked ``slow`` (``pytest -m slow``) and record how long each took.

Prints the tests by duration and writes ``benchmarks/results/slow_tests.json``: the command, the total wall time,
the thread count, the outcome counts and, per test, its outcome and seconds (setup + call + teardown, as
pytest's JUnit report gives them). Exits with pytest's code.

    python benchmarks/run_slow.py [--threads 1] [--out benchmarks/results/slow_tests.json] [-- PYTEST ARGS]

Anything after ``--`` goes to pytest (e.g. ``-- -k chambolle`` or ``-- tests/priors``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def parse_junit(path: Path) -> list[dict]:
    """One row per test case of a JUnit XML report: node id, outcome, seconds."""
    rows = []
    for case in ET.parse(path).getroot().iter("testcase"):
        outcome = "passed"
        for tag in ("failure", "error", "skipped"):
            if case.find(tag) is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
        module = case.get("classname", "")
        rows.append({"test": f"{module}::{case.get('name', '')}" if module else case.get("name", ""),
                     "outcome": outcome, "seconds": round(float(case.get("time", 0.0)), 3)})
    return sorted(rows, key=lambda r: -r["seconds"])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    extra: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=1, help="torch threads for the tests (PROXLAB_TEST_THREADS)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "slow_tests.json"))
    a = p.parse_args(argv)
    if a.threads < 1:
        p.error(f"--threads must be >= 1, got {a.threads}")
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "junit.xml"
        cmd = [sys.executable, "-m", "pytest", "-m", "slow", "-q", "-p", "no:cacheprovider",
               f"--junitxml={report}", *extra]
        env = {**os.environ, "PROXLAB_TEST_THREADS": str(a.threads), "OMP_NUM_THREADS": str(a.threads)}
        t0 = time.perf_counter()
        code = subprocess.call(cmd, cwd=ROOT, env=env)
        wall = time.perf_counter() - t0
        rows = parse_junit(report) if report.is_file() else []
    counts = {k: sum(r["outcome"] == k for r in rows) for k in ("passed", "failed", "error", "skipped")}
    summary = {"command": " ".join(["pytest", "-m", "slow", *extra]), "threads": a.threads,
               "total_seconds": round(wall, 1), "exit_code": code, "counts": counts,
               "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
               "tests": rows}
    print(f"\n{'seconds':>9}  outcome  test")
    for r in rows:
        print(f"{r['seconds']:9.1f}  {r['outcome']:7s}  {r['test']}")
    print(f"total {wall:.0f} s on {a.threads} thread(s): " + ", ".join(f"{v} {k}" for k, v in counts.items() if v))
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {out}")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
