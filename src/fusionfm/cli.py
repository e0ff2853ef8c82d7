"""The ``fusionfm`` command line: ``fusionfm metrics ...``, ``fusionfm fuse ...`` and
``fusionfm mlflow-sync``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - pandas is imported only where a table is written
    import pandas as pd

TABLE_SUFFIXES = (".parquet", ".csv")
"""What ``fusionfm metrics -o`` writes, by the output's suffix."""


def _metrics_command(args: argparse.Namespace) -> int:
    from fusionfm.io import InputError
    from fusionfm.metrics import json_ready, score_files, score_folders

    output = Path(args.output) if args.output else None
    if output is not None and output.suffix.lower() not in TABLE_SUFFIXES:
        raise InputError(
            f"{output}: unsupported table suffix {output.suffix!r}; use .parquet or .csv"
        )
    if args.fused and Path(args.fused).is_dir():
        if output is None:
            raise InputError("folder mode needs FUSED_DIR A_DIR B_DIR and -o OUT.parquet|OUT.csv")
        table = score_folders(args.fused, args.a, args.b, gt_dir=args.gt, workers=args.workers)
        _write_table(table, output)
        print(f"scored {len(table)} images -> {output}", file=sys.stderr)
        return 0
    scores = score_files(args.fused, args.a, args.b, ground_truth=args.gt)
    print(json.dumps(json_ready(scores)))
    if output is not None:
        import pandas as pd

        _write_table(pd.DataFrame([{"fused": args.fused, **scores}]), output)
    return 0


def _write_table(table: pd.DataFrame, path: Path) -> None:
    """Write a DataFrame atomically as Parquet or CSV, by ``path``'s suffix."""
    from fusionfm.io import atomic_path

    with atomic_path(path) as tmp:
        if path.suffix.lower() == ".csv":
            table.to_csv(tmp, index=False)
        else:
            table.to_parquet(tmp, index=False)


def _mlflow_sync_command(args: argparse.Namespace) -> int:
    from fusionfm.stages import PARENT_JSON, sync_tracking

    print(sync_tracking(PARENT_JSON, experiment=args.experiment), file=sys.stderr)
    return 0


def _fuse_command(args: argparse.Namespace) -> int:
    from fusionfm.fuse import run_fuse_command  # torch: only when fusing

    return run_fuse_command(args)


def _add_fuse_parser(commands: Any) -> None:
    from fusionfm.config import MAX_SOLVER_STEPS, SOLVER_METHODS, START_MODES, TASKS

    parser = commands.add_parser(
        "fuse",
        help="fuse a pair of images (or two folders) with a trained student",
        description=(
            "Fuse source images A and B with a trained FusionFM student into OUT. With two "
            "folders, fuse every pair of images with the same file stem into OUT/<stem>.png."
        ),
    )
    parser.add_argument("a", help="source A image, or a folder of them")
    parser.add_argument("b", help="source B image, or a folder of them")
    parser.add_argument("--model", required=True, help="student checkpoint (model.pt)")
    parser.add_argument("--task", required=True, choices=TASKS, help="fusion task")
    parser.add_argument("-o", "--output", required=True, help="fused image, or output folder")
    parser.add_argument("--steps", type=int, default=4, help=f"solver steps, 1..{MAX_SOLVER_STEPS}")
    parser.add_argument("--method", choices=SOLVER_METHODS, default="euler", help="ODE solver")
    parser.add_argument(
        "--start", choices=START_MODES, default=None, help="start image (default: as trained)"
    )
    parser.add_argument("--device", default="cpu", help="torch device (cpu, cuda)")
    parser.add_argument(
        "-j",
        "--threads",
        type=int,
        default=None,
        help="CPU threads for the network (default: torch's, usually every core)",
    )
    parser.add_argument(
        "--allow-untrained-task",
        action="store_true",
        help="fuse even if the checkpoint has not learned --task",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=_fuse_command)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fusionfm", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    metrics = commands.add_parser(
        "metrics",
        help="score fused images against their sources",
        description=(
            "Score FUSED against sources A and B with the fusion metric suite and print one JSON "
            "object (EN SD SF AG MI SCD VIF Qabf SSIM CC MSE PSNR, plus PSNR_gt SSIM_gt with --gt). "
            "With three folders, score every fused image (matched to its sources by file stem) "
            "into a Parquet table given by -o."
        ),
    )
    metrics.add_argument("fused", help="fused image, or a folder of fused images")
    metrics.add_argument("a", help="source A image (or folder)")
    metrics.add_argument("b", help="source B image (or folder)")
    metrics.add_argument("--gt", help="ground-truth image (or folder) for PSNR_gt and SSIM_gt")
    metrics.add_argument(
        "-o", "--output", help="table to write (.parquet or .csv); required in folder mode"
    )
    metrics.add_argument("-j", "--workers", type=int, default=1, help="folder mode: processes")
    metrics.set_defaults(handler=_metrics_command)

    _add_fuse_parser(commands)
    sync = commands.add_parser(
        "mlflow-sync",
        help="log the workflow's pending job records to MLflow",
        description=(
            "Log the job records waiting in results/mlflow/journal (written with mlflow.defer, "
            "normally logged when the workflow ends) to MLflow now, e.g. after an interrupted "
            "run. Run it where snakemake runs; MLFLOW_TRACKING_URI is honoured."
        ),
    )
    sync.add_argument(
        "--experiment", help="experiment for a new parent run (default: parent.json's)"
    )
    sync.set_defaults(handler=_mlflow_sync_command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from fusionfm.io import InputError

    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (InputError, ValueError) as err:
        print(f"fusionfm {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
