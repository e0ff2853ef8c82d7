"""Student cost: parameters, FLOPs per step, fusion latency and training throughput.

Prints, for the default :class:`fusionfm.models.UNetConfig` (or ``--base-channels``):

* parameters;
* FLOPs of one model call on a 768x576 image, counted with
  :class:`torch.utils.flop_counter.FlopCounterMode` (convolutions and matmuls; one
  multiply-accumulate = 2 FLOPs), per step, per 4-step Euler fusion, and the ratio of that fusion
  to CDDFuse's 1,591 GFLOPs (target: at most 1/20, 79.55 GFLOPs);
* CPU ms per 768x576 image (batch 1, luminance, :func:`fusionfm.solver.sample`) with Euler at 1,
  2 and 4 steps and Heun at 4 steps;
* with CUDA: the same at batch 1 and ms per image at the best batch, in float32, channels_last,
  bf16 autocast and with ``torch.compile`` (each guarded; a failure is printed, not raised);
* training throughput at the default :class:`fusionfm.train.trainer.TrainConfig` on synthetic
  in-memory task data: steps/s, samples/s, and the split between batch sampling
  (:func:`make_batch`) and forward + backward + optimizer step.

Every timing is a median over ``--repeats`` after a warm-up.

Usage::

    .venv/bin/python benchmarks/student.py
    .venv/bin/python benchmarks/student.py --repeats 5 --train-steps 50 --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from metrics import machine  # noqa: E402

from fusionfm.models import TASK_INDEX, FusionUNet, UNetConfig, count_parameters  # noqa: E402
from fusionfm.solver import sample  # noqa: E402
from fusionfm.train.data import TaskData  # noqa: E402
from fusionfm.train.trainer import TrainConfig, batch_loss, make_batch  # noqa: E402

CDDFUSE_GFLOPS = 1591.0
"""CDDFuse's cost for one 768x576 fusion, as the issue states it."""

HEIGHT, WIDTH = 576, 768


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def median_ms(
    fn: Callable[[], object], repeats: int, device: torch.device, warmup: int = 1
) -> float:
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        fn()
        _sync(device)
        times.append((time.perf_counter() - began) * 1e3)
    return statistics.median(times)


def inputs(batch: int, device: torch.device, dtype: torch.dtype = torch.float32) -> dict:
    generator = torch.Generator().manual_seed(0)
    y_a = torch.rand(batch, 1, HEIGHT, WIDTH, generator=generator)
    y_b = torch.rand(batch, 1, HEIGHT, WIDTH, generator=generator)
    return {
        "x0": ((y_a + y_b) / 2).to(device, dtype),
        "cond": {
            "y_a": y_a.to(device, dtype),
            "y_b": y_b.to(device, dtype),
            "task": torch.full((batch,), TASK_INDEX["ivf"], device=device),
        },
    }


def count_flops(model: FusionUNet) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    data = inputs(1, torch.device("cpu"))
    t = torch.zeros(1)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(data["x0"], t, **data["cond"])
    return counter.get_total_flops()


def report_model(model: FusionUNet) -> None:
    params = count_parameters(model)
    flops = count_flops(model)
    per_step = flops / 1e9
    per_fusion = 4 * per_step
    print(f"\nparameters: {params:,} ({params / 1e6:.3f} M)")
    print(
        f"per model call at {WIDTH}x{HEIGHT}: {per_step:.2f} GFLOPs "
        f"({per_step / 2:.2f} GMACs), counted by FlopCounterMode"
    )
    print(
        f"4-step Euler fusion: {per_fusion:.2f} GFLOPs = 1/{CDDFUSE_GFLOPS / per_fusion:.1f} "
        f"of CDDFuse's {CDDFUSE_GFLOPS:,.0f} GFLOPs "
        f"(target <= 1/20 = {CDDFUSE_GFLOPS / 20:.2f} GFLOPs: "
        f"{'met' if per_fusion <= CDDFUSE_GFLOPS / 20 else 'NOT met'})"
    )
    print(f"4-step Heun fusion: {2 * per_fusion:.2f} GFLOPs (two calls per step)")


def report_cpu(model: FusionUNet, repeats: int) -> None:
    device = torch.device("cpu")
    model = model.to(device).eval()
    data = inputs(1, device)
    print(
        f"\nCPU, {torch.get_num_threads()} threads, batch 1, {WIDTH}x{HEIGHT}, median of {repeats}:"
    )
    for method, steps in (("euler", 1), ("euler", 2), ("euler", 4), ("heun", 4)):
        ms = median_ms(
            lambda m=method, s=steps: sample(model, data["x0"], data["cond"], s, m), repeats, device
        )
        print(f"  {method:<5} {steps} step(s): {ms:9.1f} ms per image")


def _gpu_variant(
    base: FusionUNet,
    batch: int,
    steps: int,
    repeats: int,
    channels_last: bool,
    bf16: bool,
    compiled: bool,
) -> float:
    device = torch.device("cuda")
    model = FusionUNet(base.config)
    model.load_state_dict(base.state_dict())
    model = model.to(device).eval()
    data = inputs(batch, device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        data["x0"] = data["x0"].contiguous(memory_format=torch.channels_last)
        for key in ("y_a", "y_b"):
            data["cond"][key] = data["cond"][key].contiguous(memory_format=torch.channels_last)
    net: Callable = torch.compile(model) if compiled else model

    def run() -> None:
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
            sample(net, data["x0"], data["cond"], steps, "euler")

    return median_ms(run, repeats, device, warmup=3 if compiled else 1) / batch


def report_gpu(model: FusionUNet, repeats: int, batches: list[int]) -> None:
    if not torch.cuda.is_available():
        print("\nGPU: not measured (torch.cuda.is_available() is false)")
        return
    print(
        f"\nGPU: {torch.cuda.get_device_name()}, {WIDTH}x{HEIGHT}, 4 Euler steps, "
        f"ms per image, median of {repeats}"
    )
    variants = {
        "fp32": (False, False, False),
        "channels_last": (True, False, False),
        "bf16": (False, True, False),
        "channels_last+bf16": (True, True, False),
        "compile": (False, False, True),
        "compile+channels_last+bf16": (True, True, True),
    }
    for steps in (1, 2, 4):
        try:
            ms = _gpu_variant(model, 1, steps, repeats, False, False, False)
            print(f"  fp32 batch 1, {steps} step(s): {ms:.2f} ms per image")
        except Exception as err:  # noqa: BLE001 - a benchmark reports and goes on
            print(f"  fp32 batch 1, {steps} step(s): failed ({type(err).__name__}: {err})")
    for name, (channels_last, bf16, compiled) in variants.items():
        results = {}
        for batch in batches:
            try:
                results[batch] = _gpu_variant(
                    model, batch, 4, repeats, channels_last, bf16, compiled
                )
            except Exception as err:  # noqa: BLE001
                print(f"  {name} batch {batch}: failed ({type(err).__name__}: {str(err)[:80]})")
                torch.cuda.empty_cache()
        if results:
            best = min(results, key=results.get)
            cells = ", ".join(f"b{b} {ms:.2f}" for b, ms in results.items())
            print(
                f"  {name:<28} batch 1: {results.get(1, float('nan')):.2f} ms; best batch "
                f"{best}: {results[best]:.2f} ms/image ({cells})"
            )


def synthetic_task_data(crop: int, pairs: int = 8, size: int = 256) -> TaskData:
    """In-memory task data shaped like :func:`load_task_data`'s: random smooth images."""
    generator = torch.Generator().manual_seed(0)
    y_a, y_b, x_1 = [], [], []
    for _ in range(pairs):
        base = torch.nn.functional.interpolate(
            torch.rand(1, 1, size // 8, size // 8, generator=generator),
            size=(size, size),
            mode="bilinear",
            align_corners=False,
        )[0]
        a = (base + 0.1 * torch.rand(1, size, size, generator=generator)).clamp(0, 1)
        b = (1 - base + 0.1 * torch.rand(1, size, size, generator=generator)).clamp(0, 1)
        y_a.append(a)
        y_b.append(b)
        x_1.append(torch.maximum(a, b))
    return TaskData("ivf", [f"synthetic/{i:04d}" for i in range(pairs)], y_a, y_b, x_1, crop)


def report_training(config: UNetConfig, steps: int, device_name: str) -> None:
    train = TrainConfig(device=device_name, model=config)
    device = train.resolve_device()
    amp_dtype = None
    if train.use_amp(device):
        amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    torch.manual_seed(0)
    model = FusionUNet(config).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=train.lr, weight_decay=train.weight_decay)
    data = synthetic_task_data(train.crop)
    generator = torch.Generator().manual_seed(0)
    data_times, compute_times = [], []
    warmup = 3
    for step in range(steps + warmup):
        began = time.perf_counter()
        batch, task_ids = make_batch(data, None, train, generator)
        sampled = time.perf_counter()
        loss = batch_loss(model, batch, task_ids, device, amp_dtype)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), train.grad_clip)
        optimizer.step()
        float(loss.detach())  # synchronizes, as the trainer's loss check does
        done = time.perf_counter()
        if step >= warmup:
            data_times.append(sampled - began)
            compute_times.append(done - sampled)
    step_s = statistics.median([d + c for d, c in zip(data_times, compute_times, strict=True)])
    data_s, compute_s = statistics.median(data_times), statistics.median(compute_times)
    total = sum(data_times) + sum(compute_times)
    print(
        f"\ntraining on {device} ({torch.get_num_threads()} threads), default TrainConfig "
        f"(batch {train.batch_size}, crop {train.crop}, amp {amp_dtype}), {steps} steps "
        "after 3 warm-up steps, medians per step:"
    )
    print(
        f"  {1 / step_s:.2f} steps/s, {train.batch_size / step_s:.1f} samples/s "
        f"({step_s * 1e3:.1f} ms per step)"
    )
    print(
        f"  data sampling (make_batch): {data_s * 1e3:.2f} ms "
        f"({100 * sum(data_times) / total:.1f}% of the time)"
    )
    print(
        f"  forward + backward + clip + AdamW step: {compute_s * 1e3:.2f} ms "
        f"({100 * sum(compute_times) / total:.1f}%)"
    )
    print(
        f"  a default run ({train.steps} steps per task) would take "
        f"{train.steps * step_s:.0f} s per task"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train-steps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    parser.add_argument("--base-channels", type=int, default=0, help="0: UNetConfig default")
    parser.add_argument("--gpu-batches", default="1,2,4,8,16", help="batches tried on the GPU")
    parser.add_argument("--skip", default="", help="comma list of: cpu, gpu, train")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    config = UNetConfig(base_channels=args.base_channels) if args.base_channels else UNetConfig()
    torch.manual_seed(0)
    model = FusionUNet(config).eval()

    print(machine())
    print(f"model: {config.to_dict()}")
    report_model(model)
    if "cpu" not in skip:
        report_cpu(model, args.repeats)
    if "gpu" not in skip:
        report_gpu(model, args.repeats, [int(b) for b in args.gpu_batches.split(",")])
    if "train" not in skip:
        report_training(config, args.train_steps, "cpu")
        if torch.cuda.is_available():
            report_training(config, args.train_steps, "cuda")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
