"""Generated data: ms per synthetic pair of every task layout, at the default config's size.

:func:`fusionfm.data.synthetic.generate_pairs` makes the default run's datasets; this measures it
(one untimed warm-up call per layout, which also fills the packaged-image cache, then the median
of ``--repeats`` calls of ``--pairs`` pairs). It used to be a wall-clock assertion in the tests
(< 0.5 s per pair at 80x64); a test does not time things.

Usage::

    .venv/bin/python benchmarks/synthetic.py                       # 160x128, 4 pairs, 3 repeats
    .venv/bin/python benchmarks/synthetic.py --size 80x64 --pairs 2 --json synthetic.json
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="160x128", help="WxH of the pairs (default 160x128)")
    parser.add_argument("--pairs", type=int, default=4, help="pairs per call")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    ((height, width),) = parse_sizes(args.size)
    info = machine_info()
    print(machine_line(info))
    print(f"{'layout':8} {'ms/pair wall':>13} {'ms/pair cpu':>12}")
    rows = {}
    for name, (task, modalities) in SYNTHETIC_CASES.items():

        def make(task: str = task, modalities: tuple[str, str] = modalities) -> list:
            return list(generate_pairs(task, modalities, args.pairs, height, width, seed=99))

        wall, cpu, _ = median_wall_cpu_ms(make, args.repeats, warmup=1)
        rows[name] = {"ms_per_pair_wall": wall / args.pairs, "ms_per_pair_cpu": cpu / args.pairs}
        print(f"{name:8} {wall / args.pairs:13.1f} {cpu / args.pairs:12.1f}")
    write_json(args.json, {"machine": info, "size": [height, width], "layouts": rows})


if __name__ == "__main__":
    main()
