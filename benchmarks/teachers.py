"""Teacher timing: ms per source pair of every built-in teacher, at 256x256 and 768x576.

For each task one synthetic pair is generated (:func:`fusionfm.data.synthetic.generate_pairs`;
IVF: gray IR + RGB visible, MIF: gray MRI + gray CT and gray MRI + RGB PET, MEF and MFF: two RGB
images), and every built-in teacher that serves the task fuses it through
:func:`fusionfm.teacher.run_teacher` (one untimed warm-up call, then the median of ``--repeats``),
in one process (the pipeline runs pairs in parallel, one per worker).

Usage::

    .venv/bin/python benchmarks/teachers.py                     # both sizes, 3 repeats
    .venv/bin/python benchmarks/teachers.py --sizes 768x576 --tasks ivf,mef --repeats 5
    .venv/bin/python benchmarks/teachers.py --json teachers.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    SYNTHETIC_CASES,
    machine_info,
    machine_line,
    median_wall_cpu_ms,
    parse_sizes,
    write_json,
)

from fusionfm.data.synthetic import generate_pairs  # noqa: E402
from fusionfm.teacher import builtin_teachers, run_teacher  # noqa: E402


def _kind(image) -> str:
    return "rgb" if image.ndim == 3 else "gray"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="256x256,768x576", help="comma-separated WxH")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--tasks", default=",".join(SYNTHETIC_CASES), help=f"cases: {', '.join(SYNTHETIC_CASES)}"
    )
    parser.add_argument("--teachers", default="", help="comma-separated subset (default: all)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    cases = [c.strip() for c in args.tasks.split(",") if c.strip()]
    unknown = sorted(set(cases) - set(SYNTHETIC_CASES))
    if unknown:
        parser.error(f"unknown case(s) {unknown}; known: {list(SYNTHETIC_CASES)}")
    wanted = {t.strip() for t in args.teachers.split(",") if t.strip()}

    info = machine_info()
    print(machine_line(info))
    print(f"ms per pair, wall and CPU, median of {args.repeats} (after one warm-up call)")
    results: dict[str, dict] = {}
    for height, width in parse_sizes(args.sizes):
        size = f"{width}x{height}"
        print(f"\n== {size} (W x H) ==")
        teachers = [t for t in builtin_teachers() if not wanted or t.name in wanted]
        header = f"{'teacher':<20}" + "".join(f"{c:>12}" for c in cases)
        kinds = []
        pairs = {}
        for case in cases:
            task, modalities = SYNTHETIC_CASES[case]
            pair = next(generate_pairs(task, modalities, 1, height, width, seed=0))
            pairs[case] = (task, pair)
            kinds.append(f"{_kind(pair.a)}+{_kind(pair.b)}")
        results[size] = {"sources": dict(zip(cases, kinds, strict=True))}
        walls: dict[str, dict[str, float]] = {}
        cpus: dict[str, dict[str, float]] = {}
        for teacher in teachers:
            walls[teacher.name], cpus[teacher.name] = {}, {}
            for case in cases:
                task, pair = pairs[case]
                if task in teacher.tasks:
                    wall, cpu, _ = median_wall_cpu_ms(
                        lambda t=teacher.name, p=pair, k=task: run_teacher(t, p.a, p.b, k),
                        args.repeats,
                        warmup=1,
                    )
                    walls[teacher.name][case], cpus[teacher.name][case] = wall, cpu
        results[size] |= {"ms_per_pair": walls, "cpu_ms_per_pair": cpus}
        for title, table in (("wall ms", walls), ("CPU ms (this process)", cpus)):
            print(f"{title}:")
            print(header)
            print(f"{'(sources)':<20}" + "".join(f"{k:>12}" for k in kinds))
            for name, row in table.items():
                cells = "".join(f"{row[c]:>12.1f}" if c in row else f"{'-':>12}" for c in cases)
                print(f"{name:<20}" + cells, flush=True)
    write_json(
        args.json,
        {"benchmark": "teachers", "machine": info, "repeats": args.repeats, "sizes": results},
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
