"""End-to-end wall time of the pipeline, in total and per rule from Snakemake's benchmark files.

By default copies the repository's working tree (tracked and untracked files that git does not
ignore, so no ``results/``, ``benchmarks/<rule>/`` or ``.snakemake/``; ``--head``: the committed
``HEAD`` instead) into a fresh temporary folder, runs ``snakemake --cores 2 all`` there on the default ``config.yaml`` from the current
environment, and prints:

* the wall time of the whole ``snakemake`` command;
* per rule, from ``benchmarks/<rule>/<wildcards>.tsv`` (the heavy rules declare a
  ``benchmark:``): the number of jobs, the sum of their wall seconds (``s``) and CPU seconds
  (``cpu_time``), the longest job, and the rule's span on the wall clock, from the first job's
  start to the last job's end. A benchmark file is written as its job ends, so its modification
  time is taken as the job's end and ``mtime - s`` as its start; spans are approximate (to the
  file system's clock) and overlap where Snakemake ran rules side by side;
* the share of the wall time that no benchmarked job covers (Snakemake's own start-up and DAG
  work, and the light rules without a ``benchmark:``).

``--summarize DIR`` only summarizes an existing run (``DIR/benchmarks/**/*.tsv``) and takes the
wall time from ``--wall-s`` if given.

Usage::

    .venv/bin/python benchmarks/end_to_end.py                       # fresh copy, --cores 2 all
    .venv/bin/python benchmarks/end_to_end.py --head --keep         # HEAD; keep the copy
    .venv/bin/python benchmarks/end_to_end.py --snakemake-args=-n   # dry run: copy and DAG only
    .venv/bin/python benchmarks/end_to_end.py --summarize .         # this checkout's last run
    .venv/bin/python benchmarks/end_to_end.py --json end_to_end.json
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_info, machine_line, write_json  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TARGET_S = 600.0
"""The issue's target for the default run on 2 cores: under 10 minutes."""


def copy_head(source: Path, destination: Path) -> int:
    """Extract the committed tree of ``HEAD``; returns the number of files."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", "HEAD"], cwd=source, check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        members = [m for m in tar.getmembers() if m.isfile()]
        tar.extractall(destination, filter="data")
    return len(members)


def copy_working_tree(source: Path, destination: Path) -> int:
    """Copy the files git lists as tracked or untracked-but-not-ignored; returns their count."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=source,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    count = 0
    for raw in listed:
        if not raw:
            continue
        relative = Path(raw.decode())
        origin = source / relative
        if not origin.is_file():  # deleted in the working tree, or a submodule
            continue
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(origin, target)
        count += 1
    return count


def snakemake_command(cores: int, target: str, extra: list[str]) -> list[str]:
    executable = shutil.which("snakemake")
    if executable is None:
        candidate = Path(sys.executable).with_name("snakemake")
        executable = str(candidate) if candidate.exists() else None
    base = [executable] if executable else [sys.executable, "-m", "snakemake"]
    return [*base, "--cores", str(cores), target, *extra]


def run_pipeline(workdir: Path, command: list[str]) -> tuple[float, int, Path]:
    """Run ``command`` in ``workdir``; returns wall seconds, exit status and the log path.

    The copy's ``src`` goes first on ``PYTHONPATH``, so its jobs import the copied fusionfm and
    not the package the environment has installed (an editable install points at this checkout).
    """
    log = workdir / "end_to_end.log"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(workdir / "src"), env.get("PYTHONPATH", "")) if p
    )
    began = time.perf_counter()
    with open(log, "w") as stream:
        status = subprocess.run(
            command, cwd=workdir, env=env, stdout=stream, stderr=subprocess.STDOUT
        )
    return time.perf_counter() - began, status.returncode, log


def read_benchmarks(root: Path) -> list[dict]:
    """One record per benchmark TSV under ``root/benchmarks``: rule, job, seconds, times."""
    records = []
    base = root / "benchmarks"
    for path in sorted(base.glob("**/*.tsv")):
        relative = path.relative_to(base)
        if len(relative.parts) < 2:
            continue
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle, delimiter="\t"))
        if not rows:
            continue
        row = rows[-1]  # repeated benchmark runs append rows; the last is this run's
        seconds = float(row["s"])
        end = path.stat().st_mtime
        cpu = row.get("cpu_time", "")
        records.append(
            {
                "rule": relative.parts[0],
                "job": "/".join(relative.parts[1:]).removesuffix(".tsv"),
                "s": seconds,
                "cpu_s": float(cpu) if cpu not in ("", "NA", None) else None,
                "max_rss_mb": float(row["max_rss"])
                if row.get("max_rss") not in ("", "NA")
                else None,
                "start": end - seconds,
                "end": end,
            }
        )
    return records


def _covered(intervals: list[tuple[float, float]]) -> float:
    """Length of the union of intervals."""
    total, current_start, current_end = 0.0, None, None
    for start, end in sorted(intervals):
        if current_end is None or start > current_end:
            if current_end is not None:
                total += current_end - current_start
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    if current_end is not None:
        total += current_end - current_start
    return total


def summarize(records: list[dict], wall_s: float | None) -> dict:
    """Per-rule table (ordered by first start) and the uncovered share of the wall time."""
    if not records:
        print("no benchmark files found")
        return {"rules": {}}
    by_rule: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        by_rule[record["rule"]].append(record)
    origin = min(r["start"] for r in records)
    rules = {}
    for rule, jobs in sorted(by_rule.items(), key=lambda kv: min(j["start"] for j in kv[1])):
        cpu = [j["cpu_s"] for j in jobs if j["cpu_s"] is not None]
        longest = max(jobs, key=lambda j: j["s"])
        rules[rule] = {
            "jobs": len(jobs),
            "sum_s": sum(j["s"] for j in jobs),
            "cpu_s": sum(cpu) if cpu else None,
            "max_s": longest["s"],
            "longest_job": longest["job"],
            "first_start_s": min(j["start"] for j in jobs) - origin,
            "last_end_s": max(j["end"] for j in jobs) - origin,
        }
        rules[rule]["span_s"] = rules[rule]["last_end_s"] - rules[rule]["first_start_s"]
    covered = _covered([(r["start"], r["end"]) for r in records])
    print(
        f"\n{'rule':<22} {'jobs':>5} {'sum s':>9} {'cpu s':>9} {'max s':>8} "
        f"{'start':>8} {'end':>8} {'span s':>8}  longest job"
    )
    for rule, row in rules.items():
        cpu = f"{row['cpu_s']:.1f}" if row["cpu_s"] is not None else "-"
        print(
            f"{rule:<22} {row['jobs']:>5} {row['sum_s']:>9.1f} {cpu:>9} {row['max_s']:>8.1f} "
            f"{row['first_start_s']:>8.1f} {row['last_end_s']:>8.1f} {row['span_s']:>8.1f}  "
            f"{row['longest_job']}"
        )
    total_sum = sum(r["sum_s"] for r in rules.values())
    print(
        f"{'all benchmarked jobs':<22} {len(records):>5} {total_sum:>9.1f}; wall clock covered "
        f"by at least one of them: {covered:.1f} s"
    )
    summary = {"rules": rules, "benchmarked_job_seconds": total_sum, "covered_s": covered}
    if wall_s is not None:
        summary["wall_s"] = wall_s
        summary["uncovered_s"] = wall_s - covered
        print(
            f"wall time {wall_s:.1f} s ({wall_s / 60:.1f} min); not covered by a benchmarked job "
            f"(Snakemake start-up and scheduling, rules without benchmark:): "
            f"{wall_s - covered:.1f} s"
        )
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--target", default="all")
    parser.add_argument("--snakemake-args", default="", help="extra arguments, space-separated")
    parser.add_argument("--summarize", help="only summarize the run in this folder")
    parser.add_argument("--wall-s", type=float, help="with --summarize: the run's wall time")
    parser.add_argument("--keep", action="store_true", help="keep the temporary copy")
    parser.add_argument(
        "--head", action="store_true", help="copy the committed HEAD, not the working tree"
    )
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    info = machine_info()
    print(machine_line(info))
    payload: dict = {"benchmark": "end_to_end", "machine": info}

    if args.summarize:
        root = Path(args.summarize).resolve()
        print(f"summarizing the benchmark files of {root}")
        payload["summarized"] = str(root)
        payload |= summarize(read_benchmarks(root), args.wall_s)
        write_json(args.json, payload)
        return 0

    workdir = Path(tempfile.mkdtemp(prefix="fusionfm-e2e-"))
    status = 1
    try:
        files = (copy_head if args.head else copy_working_tree)(REPO, workdir)
        command = snakemake_command(args.cores, args.target, args.snakemake_args.split())
        what = "HEAD" if args.head else "the working tree"
        print(f"copied {files} files of {what} of {REPO} to {workdir}")
        print(f"running: {' '.join(command)}  (log: {workdir / 'end_to_end.log'})", flush=True)
        wall_s, status, log = run_pipeline(workdir, command)
        payload |= {"command": command, "cores": args.cores, "exit_status": status}
        if status != 0:
            tail = log.read_text().splitlines()[-40:]
            print("snakemake failed; the end of its log:\n" + "\n".join(tail), file=sys.stderr)
        payload |= summarize(read_benchmarks(workdir), wall_s)
        payload["target_s"] = TARGET_S
        payload["target_met"] = status == 0 and wall_s < TARGET_S and bool(payload["rules"])
        print(
            f"target: under {TARGET_S / 60:.0f} min on {args.cores} cores: "
            f"{'met' if payload['target_met'] else 'NOT met'}"
        )
        write_json(args.json, payload)
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
