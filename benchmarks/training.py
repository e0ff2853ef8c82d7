"""Training throughput of the student: steps/s, samples/s, and where a step's time goes.

Replicates one step of :func:`fusionfm.train.trainer.train_task` with the library's own pieces
on in-memory synthetic data (:func:`fusionfm.data.synthetic.generate_pairs`, default: 6 training
pairs of 160x128 like the default config's ``syn_ivf`` after its test split, pseudo-labels = the
sources' rounded mean luminance; the cost does not depend on the labels), and times its parts:

* data: :func:`make_batch` (random crops and flips from :class:`TaskData`, tensors held in
  memory, replayed crops, start image and times), on the CPU as in the trainer;
* transfer: moving the batch to the device (nothing on CPU);
* compute: forward (autocast as the trainer does: bf16 on CUDA when supported, none on CPU),
  flow-matching loss, EWC penalty, backward, gradient clipping and the AdamW step, up to the
  loss read-back the trainer does every step (which synchronizes).

Two cases: the first task (no EWC, no replay) and a later task (EWC penalty active, a quarter of
each batch replayed). For each device (CPU; CUDA when available) it prints the median step time,
steps/s and samples/s from it, and the median of each part with its share of the summed time.
Medians over ``--steps`` steps after ``--warmup`` untimed ones.

Usage::

    .venv/bin/python benchmarks/training.py
    .venv/bin/python benchmarks/training.py --steps 50 --threads 2 --devices cpu
    PYTHONPATH=src python3 benchmarks/training.py --json training.json   # on a GPU machine
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import types
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_info, machine_line, write_json  # noqa: E402


def _stub_missing_pywavelets() -> str | None:
    """fusionfm.train imports the teacher package, whose DWT teacher needs PyWavelets at import
    time. This benchmark never runs a teacher; where PyWavelets is missing (a bare GPU machine),
    stand in a module that fails on use, and say so."""
    try:
        import pywt  # noqa: F401
    except ImportError:
        stub = types.ModuleType("pywt")

        def missing(name: str):
            if name.startswith("__"):  # introspection (hasattr(module, "__file__") and the like)
                raise AttributeError(name)
            raise ImportError(f"PyWavelets is not installed (pywt.{name})")

        stub.__getattr__ = missing  # type: ignore[method-assign]
        sys.modules["pywt"] = stub
        return "PyWavelets not installed: stubbed (only the dwt teacher, unused here, needs it)"
    return None


_NOTE = _stub_missing_pywavelets()

from fusionfm.color import luma  # noqa: E402
from fusionfm.continual import EWCPenalty, ReplayBuffer  # noqa: E402
from fusionfm.data.synthetic import generate_pairs  # noqa: E402
from fusionfm.loss import flow_matching_loss  # noqa: E402
from fusionfm.models import FusionUNet  # noqa: E402
from fusionfm.path import StraightPath  # noqa: E402
from fusionfm.train.data import TaskData  # noqa: E402
from fusionfm.train.trainer import TrainConfig, make_batch, optimizer_step  # noqa: E402


def synthetic_task_data(task: str, pairs: int, height: int, width: int, crop: int) -> TaskData:
    """In-memory task data from generated pairs: luminance in [0, 1], label = rounded mean."""
    modalities = {"ivf": ("ir", "vi"), "mif": ("mri", "ct"), "mef": ("under", "over")}
    modalities |= {"mff": ("near", "far")}
    y_a, y_b, x_1 = [], [], []
    for pair in generate_pairs(task, modalities[task], pairs, height, width, seed=0):
        a, b = luma(pair.a), luma(pair.b)
        for store, image in ((y_a, a), (y_b, b), (x_1, np.round((a + b) / 2))):
            store.append(torch.from_numpy(image / 255.0).float()[None])
    names = [f"synthetic/{i:04d}" for i in range(pairs)]
    return TaskData(task, names, y_a, y_b, x_1, crop)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(
    data: TaskData,
    train: TrainConfig,
    device: torch.device,
    later_task: bool,
    steps: int,
    warmup: int,
) -> dict:
    """Median per-step times (s) of data, transfer and compute, over ``steps`` timed steps."""
    amp_dtype = None
    if train.use_amp(device):
        amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    torch.manual_seed(0)
    model = FusionUNet(train.model).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=train.lr, weight_decay=train.weight_decay)
    ewc = EWCPenalty(train.ewc_lambda)
    replay = None
    if later_task:
        params = {n: p.detach().clone() for n, p in model.named_parameters()}
        ewc.accumulate({n: torch.rand_like(p) for n, p in params.items()}, params)
        replay = ReplayBuffer(train.replay_capacity, seed=0)
        replay.add("mif", data.sample(train.replay_capacity, torch.Generator().manual_seed(1)))
    ewc.to(device)
    generator = torch.Generator().manual_seed(0)
    parts: dict[str, list[float]] = {"data": [], "transfer": [], "compute": []}
    for step in range(warmup + steps):
        began = time.perf_counter()
        batch, task_ids = make_batch(data, replay, train, generator)
        sampled = time.perf_counter()
        moved = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        task_ids = task_ids.to(device)
        _sync(device)
        transferred = time.perf_counter()
        path = StraightPath().sample(moved["x_0"], moved["x_1"], moved["t"])
        context = torch.autocast(device.type, dtype=amp_dtype) if amp_dtype else nullcontext()
        with context:
            pred = model(path.x_t, path.t, moved["y_a"], moved["y_b"], task_ids)
        loss = flow_matching_loss(pred, path)
        if ewc.active and ewc.strength > 0:
            loss = loss + ewc.penalty(model)
        float(loss.detach())  # the trainer's finiteness check reads the loss every step
        optimizer_step(model, optimizer, scaler, loss, train.grad_clip)
        _sync(device)
        done = time.perf_counter()
        if step >= warmup:
            parts["data"].append(sampled - began)
            parts["transfer"].append(transferred - sampled)
            parts["compute"].append(done - transferred)
    totals = [sum(p) for p in zip(*parts.values(), strict=True)]
    summed = sum(totals)
    step_s = statistics.median(totals)
    return {
        "amp": str(amp_dtype).replace("torch.", "") if amp_dtype else None,
        "median_step_ms": 1e3 * step_s,
        "steps_per_s": 1 / step_s,
        "samples_per_s": train.batch_size / step_s,
        "parts_median_ms": {k: 1e3 * statistics.median(v) for k, v in parts.items()},
        "parts_share": {k: sum(v) / summed for k, v in parts.items()},
    }


def report(name: str, result: dict, batch: int) -> None:
    share = result["parts_share"]
    median = result["parts_median_ms"]
    print(
        f"  {name:<28} {result['median_step_ms']:8.1f} ms/step  {result['steps_per_s']:7.2f} "
        f"steps/s  {result['samples_per_s']:8.1f} samples/s (batch {batch})"
    )
    print(
        "  "
        + " " * 28
        + "  ".join(f"{k} {median[k]:.2f} ms ({100 * share[k]:.1f}%)" for k in median)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30, help="timed steps per case")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    parser.add_argument("--devices", default="cpu,cuda", help="cuda is skipped without CUDA")
    parser.add_argument("--task", default="ivf")
    parser.add_argument("--pairs", type=int, default=6, help="training pairs in memory")
    parser.add_argument("--size", default="160x128", help="WxH of each pair")
    parser.add_argument("--train", default="", help="TrainConfig overrides as JSON")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    train = TrainConfig.from_dict(json.loads(args.train) if args.train else {})
    width, height = (int(v) for v in args.size.lower().split("x"))
    data = synthetic_task_data(args.task, args.pairs, height, width, train.crop)

    info = machine_info()
    print(machine_line(info))
    if _NOTE:
        print(f"note: {_NOTE}")
    print(
        f"TrainConfig: batch {train.batch_size}, crop {train.crop}, replay ratio "
        f"{train.replay_ratio}, EWC lambda {train.ewc_lambda}, model "
        f"{train.model.to_dict()}; data: {args.pairs} {args.task} pairs of "
        f"{width}x{height} in memory; medians of {args.steps} steps after {args.warmup}"
    )
    payload: dict = {
        "benchmark": "training",
        "machine": info,
        "train_config": train.to_dict(),
        "data": {"task": args.task, "pairs": args.pairs, "size": f"{width}x{height}"},
        "steps": args.steps,
        "devices": {},
    }
    for name in [d.strip() for d in args.devices.split(",") if d.strip()]:
        if name == "cuda" and not torch.cuda.is_available():
            print("\ncuda: not measured (torch.cuda.is_available() is false)")
            continue
        device = torch.device(name)
        label = (
            torch.cuda.get_device_name()
            if name == "cuda"
            else f"cpu, {torch.get_num_threads()} threads"
        )
        print(f"\n{label}:")
        payload["devices"][name] = {"label": label}
        for case, later in (("first task", False), ("later task (EWC + replay)", True)):
            result = measure(data, train, device, later, args.steps, args.warmup)
            payload["devices"][name][case] = result
            report(case, result, train.batch_size)
    write_json(args.json, payload)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
