"""The whole gate's figures: `make gate` cold and warm, two xdist workers against one, and the
time the gate spends inside the models.

    .venv/bin/python -m bench.gate_runs                     # everything, about 12 minutes
    .venv/bin/python -m bench.gate_runs --skip make         # only the xdist comparison
    .venv/bin/python -m bench.gate_runs --skip xdist --model models/emotion-cnn/model.yaml

Prints, each measured once in this run, with the performance issue's target:

- `make gate`, cold: the default `make gate` (both reference models, every explainer and check,
  latency included) with an empty explanation cache (a fresh `XAIGATE_CACHE`), after set-up
  (the venv, probes and weights exist); target 3 minutes;
- wall over model time, cold: from each reference model's gate.json part of that run
  (`provenance.wall_seconds / model_seconds` of the cases run on the xdist workers); target 1.5;
- `make gate`, warm: the same command again on unchanged inputs; target 10x faster than cold;
- two xdist workers over one: `pytest suites -n 1` and `-n 2` on the quality suites (latency
  left out) of `--model`, each with `--no-cache`, so both compute every map; target 1.6;
- the ceiling of that ratio set by torch alone: the reference CNN's forward passes per second
  with two threads in one process against two one-thread processes at once (each worker gets
  cores / workers threads);
- the same quality suites on one core (`taskset -c 0`, so one torch thread), and what a second
  thread in one process (`-n 1`) and a second worker (`-n 2`) gain over it: the xdist ratio is
  the second over the first.

`make gate` writes `reports/` as it always does. Load averages are printed: on a busy machine the
figures mean little.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("smile-cnn", "emotion-cnn")  # the reference models' parts of `make gate`
TARGETS = {"make gate, cold (s)": 180.0, "wall / model": 1.5, "cold / warm": 10.0, "xdist": 1.6}

THREAD_PROBE = """
import sys, time, numpy as np, torch
torch.set_num_threads(int(sys.argv[1]))
from xaigate.models.card import load_card
from xaigate.models.loading import load_model
model = load_model(load_card(sys.argv[2]))
images = np.random.default_rng(0).random((2000, 64, 64, 3), dtype=np.float32)
model.predict_proba(images[:64])
best = float("inf")
for _ in range(3):
    started = time.perf_counter()
    model.predict_proba(images)
    best = min(best, time.perf_counter() - started)
print(len(images) / best)
"""


def _timed(command: list[str], env: dict[str, str] | None = None) -> float:
    """Seconds `command` took; a run that fails (a failed gate too) stops the bench: figures of
    a gate that did not pass are not the gate's cost."""
    started = time.perf_counter()
    completed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if completed.returncode != 0:
        sys.stderr.write(completed.stdout[-3000:] + completed.stderr[-3000:])
        raise SystemExit(f"{' '.join(command)}: exit code {completed.returncode}")
    return seconds


def _load() -> str:
    return f"{os.getloadavg()[0]:.2f}"


def make_gate(cache: Path) -> tuple[float, float, dict[str, float]]:
    """Seconds of a cold and of a warm `make gate`, and the cold run's wall/model per model."""
    env = {**os.environ, "XAIGATE_CACHE": str(cache)}
    cold = _timed(["make", "gate"], env)
    ratios = {}
    for part in PARTS:
        provenance = json.loads((ROOT / f"reports/parts/{part}-cases.json").read_text())[
            "provenance"
        ]
        ratios[part] = provenance["wall_over_model"]
    warm = _timed(["make", "gate"], env)
    return cold, warm, ratios


def xdist(model: str, probes: str) -> dict[str, float]:
    """Seconds of the quality suites on one and on two workers, and on one worker pinned to
    one core when `taskset` is there, every map computed."""
    seconds = {}
    runs = {"-n 1": (1, []), "-n 2": (2, [])}
    if shutil.which("taskset"):
        runs["one core"] = (1, ["taskset", "-c", "0"])
    for name, (workers, pinned) in runs.items():
        with tempfile.TemporaryDirectory() as folder:
            seconds[name] = _timed(
                [
                    *pinned,
                    sys.executable,
                    "-m",
                    "pytest",
                    "suites",
                    "--ignore=suites/test_latency.py",
                    "--model",
                    model,
                    "--probes",
                    probes,
                    "-n",
                    str(workers),
                    "--dist",
                    "loadgroup",
                    "--no-cache",
                    "-q",
                    "-p",
                    "no:cacheprovider",
                    "--gate-json",
                    str(Path(folder) / "gate.json"),
                ]
            )
    return seconds


def thread_ceiling(model: str) -> float:
    """Passes per second of two one-thread processes at once over one two-thread process."""
    command = [sys.executable, "-c", THREAD_PROBE]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    single = subprocess.run(
        [*command, "2", model], cwd=ROOT, env=env, capture_output=True, text=True
    )
    pair = [
        subprocess.Popen(
            [*command, "1", model], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [process.communicate()[0] for process in pair]
    if single.returncode or any(process.returncode for process in pair):
        raise SystemExit(f"the thread probe failed: {single.stderr[-2000:]}")
    return sum(float(output) for output in outputs) / float(single.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip", action="append", default=[], choices=("make", "xdist"))
    parser.add_argument("--model", default="models/smile-cnn/model.yaml")
    parser.add_argument("--probes", default="probes/smile")
    args = parser.parse_args(argv)
    print(f"bench.gate_runs on {os.cpu_count()} cores; load average {_load()} at the start")
    rows: list[tuple[str, str, float | None, str]] = []
    if "make" not in args.skip:
        with tempfile.TemporaryDirectory(prefix="xaigate-cache-") as cache:
            cold, warm, ratios = make_gate(Path(cache))
        rows.append(("make gate, cold (s)", f"{cold:.1f}", TARGETS["make gate, cold (s)"], "<="))
        for part, ratio in ratios.items():
            rows.append((f"wall / model, {part}", f"{ratio:.2f}", TARGETS["wall / model"], "<="))
        rows.append(("make gate, warm (s)", f"{warm:.1f}", None, ""))
        rows.append(("cold / warm", f"{cold / warm:.2f}", TARGETS["cold / warm"], ">="))
    if "xdist" not in args.skip:
        seconds = xdist(args.model, args.probes)
        rows.append(("quality suites, -n 1 (s)", f"{seconds['-n 1']:.1f}", None, ""))
        rows.append(("quality suites, -n 2 (s)", f"{seconds['-n 2']:.1f}", None, ""))
        ratio = seconds["-n 1"] / seconds["-n 2"]
        rows.append(("xdist: -n 1 / -n 2", f"{ratio:.2f}", TARGETS["xdist"], ">="))
        if "one core" in seconds:
            one = seconds["one core"]
            rows.append(("quality suites, one core, one thread (s)", f"{one:.1f}", None, ""))
            rows.append(
                ("second thread: one core / -n 1", f"{one / seconds['-n 1']:.2f}", None, "")
            )
            rows.append(
                ("second worker: one core / -n 2", f"{one / seconds['-n 2']:.2f}", None, "")
            )
        else:
            print("taskset not found: the one-core run is left out")
        ceiling = thread_ceiling(args.model)
        rows.append(("ceiling: 2 x 1 thread / 1 x 2 threads", f"{ceiling:.2f}", None, ""))
    print(f"load average {_load()} at the end\n")
    print("| measure | measured | target | met |\n| --- | ---: | ---: | --- |")
    for name, value, target, sense in rows:
        if target is None:
            print(f"| {name} | {value} | | |")
            continue
        met = float(value) <= target if sense == "<=" else float(value) >= target
        print(f"| {name} | {value} | {sense} {target:g} | {'yes' if met else 'no'} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
