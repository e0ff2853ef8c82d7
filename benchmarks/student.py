"""Student cost: parameters, multiply-accumulates per step, fusion latency on CPU and GPU.

For the default :class:`fusionfm.models.UNetConfig` (or the overrides of ``--model``), prints:

* parameters;
* multiply-accumulates (MACs) and FLOPs of one model call on a 768x576 image, counted with
  :class:`torch.utils.flop_counter.FlopCounterMode` (it counts convolutions and matrix products,
  2 FLOPs per MAC, and leaves out element-wise work: normalizations, activations, additions,
  upsampling), per call and per 4-step Euler fusion (4 calls), and the ratio to CDDFuse's
  1,591 G. The comparison is made conservatively in FLOPs: our FLOPs (2 x MACs) against 1,591 G,
  which also holds if CDDFuse's figure is really MACs, as thop-style counters report. The target
  is at most 1/20, i.e. 79.55 GFLOPs per fusion;
* CPU ms per 768x576 image (batch 1, luminance, :func:`fusionfm.solver.sample`) with Euler at 1,
  2 and 4 steps (``--heun`` adds Heun at 4 steps, 8 calls);
* with CUDA (``torch.cuda.is_available()``): fp32 batch 1 at 1, 2 and 4 steps, then at 4 steps a
  batch sweep (``--gpu-batches``) of eager fp32, channels_last, bf16 autocast and
  channels_last + bf16 (ms per image and images per second, with ``torch.cuda.synchronize``
  around every timed run), and ``torch.compile`` of the fastest eager variant at batch 1 and at
  its best batch (a compile per batch size, each about half a minute or more). ``--gpu-budget-s``
  (default 100 s) stops starting new GPU measurements once spent (one already started, e.g. a
  compile, runs to its end); anything skipped is printed and recorded. fp32 convolutions run as cuDNN's defaults
  allow (TF32 on Ampere and later).

Timings are medians over ``--repeats`` after a warm-up. The model has random weights: the cost
does not depend on them. Only :mod:`fusionfm.models` and :mod:`fusionfm.solver` are imported
(torch and numpy; no snakemake, mlflow or jsonschema), so the script runs as
``PYTHONPATH=src python3 benchmarks/student.py`` on a bare GPU machine.

Usage::

    .venv/bin/python benchmarks/student.py                            # CPU (and GPU if present)
    .venv/bin/python benchmarks/student.py --threads 1 --repeats 5
    .venv/bin/python benchmarks/student.py --model '{"base_channels": 8}' --skip cpu
    PYTHONPATH=src python3 benchmarks/student.py --json student.json  # on a GPU machine
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    machine_info,
    machine_line,
    median_ms,
    median_wall_cpu_ms,
    write_json,
)

from fusionfm.models import TASK_INDEX, FusionUNet, UNetConfig, count_parameters  # noqa: E402
from fusionfm.solver import sample  # noqa: E402

CDDFUSE_GFLOPS = 1591.0
"""CDDFuse's cost for one 768x576 fusion, as the issue states it (GFLOPs)."""
TARGET_FRACTION = 1 / 20
TARGET_IMAGES_PER_SECOND = 100.0
"""GPU target: images per second at 4 steps."""

HEIGHT, WIDTH = 576, 768


def inputs(
    batch: int, device: torch.device, height: int = HEIGHT, width: int = WIDTH
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """A start image and the conditioning of ``batch`` random 1-channel source pairs."""
    generator = torch.Generator().manual_seed(0)
    y_a = torch.rand(batch, 1, height, width, generator=generator)
    y_b = torch.rand(batch, 1, height, width, generator=generator)
    cond = {
        "y_a": y_a.to(device),
        "y_b": y_b.to(device),
        "task": torch.full((batch,), TASK_INDEX["ivf"], device=device),
    }
    return ((y_a + y_b) / 2).to(device), cond


def count_macs(model: FusionUNet, height: int = HEIGHT, width: int = WIDTH) -> int:
    """Multiply-accumulates of one model call at batch 1 (FlopCounterMode's FLOPs / 2)."""
    from torch.utils.flop_counter import FlopCounterMode

    x0, cond = inputs(1, torch.device("cpu"), height, width)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model.cpu()(x0, torch.zeros(1), **cond)
    return counter.get_total_flops() // 2


def report_model(model: FusionUNet) -> dict:
    params = count_parameters(model)
    macs = count_macs(model)
    gmacs, gflops = macs / 1e9, 2 * macs / 1e9
    fusion_gflops = 4 * gflops
    target = CDDFUSE_GFLOPS * TARGET_FRACTION
    met = fusion_gflops <= target
    print(f"\nparameters: {params:,} ({params / 1e6:.3f} M)")
    print(
        f"one model call at {WIDTH}x{HEIGHT}: {gmacs:.2f} GMACs = {gflops:.2f} GFLOPs "
        "(FlopCounterMode; convolutions and matrix products)"
    )
    print(
        f"4-step Euler fusion (4 calls): {4 * gmacs:.2f} GMACs = {fusion_gflops:.2f} GFLOPs "
        f"= 1/{CDDFUSE_GFLOPS / fusion_gflops:.1f} of CDDFuse's {CDDFUSE_GFLOPS:,.0f} G, "
        f"compared in FLOPs (target <= 1/20 = {target:.2f} GFLOPs: "
        f"{'met' if met else 'NOT met'})"
    )
    print(
        f"  (in MACs against 1,591 G, the less conservative reading, it would be "
        f"1/{CDDFUSE_GFLOPS / (4 * gmacs):.1f})"
    )
    print(f"4-step Heun fusion (8 calls): {8 * gflops:.2f} GFLOPs")
    return {
        "parameters": params,
        "size": f"{WIDTH}x{HEIGHT}",
        "gmacs_per_call": gmacs,
        "gflops_per_call": gflops,
        "gflops_per_4_step_euler_fusion": fusion_gflops,
        "cddfuse_gflops": CDDFUSE_GFLOPS,
        "fraction_of_cddfuse": fusion_gflops / CDDFUSE_GFLOPS,
        "target_gflops": target,
        "target_met": met,
    }


def report_cpu(model: FusionUNet, repeats: int, heun: bool) -> dict:
    device = torch.device("cpu")
    model = model.to(device).eval()
    x0, cond = inputs(1, device)
    print(
        f"\nCPU, {torch.get_num_threads()} threads, batch 1, {WIDTH}x{HEIGHT}, "
        f"ms per image, median of {repeats} after a warm-up:"
    )
    runs = [("euler", 1), ("euler", 2), ("euler", 4)] + ([("heun", 4)] if heun else [])
    results = {"threads": torch.get_num_threads(), "repeats": repeats, "ms_per_image": {}}
    results["cpu_ms_per_image"] = {}
    for method, steps in runs:
        ms, cpu_ms, _ = median_wall_cpu_ms(
            lambda m=method, s=steps: sample(model, x0, cond, s, m), repeats, warmup=1
        )
        results["ms_per_image"][f"{method}_{steps}"] = ms
        results["cpu_ms_per_image"][f"{method}_{steps}"] = cpu_ms
        print(
            f"  {method:<5} {steps} step(s): {ms:9.1f} ms per image "
            f"({cpu_ms:.0f} ms CPU time, all threads)",
            flush=True,
        )
    return results


class GpuRunner:
    """Times fusion variants on one accelerator within a wall-clock budget."""

    def __init__(
        self, base: FusionUNet, device: torch.device, repeats: int, budget_s: float, size
    ) -> None:
        self.base, self.device, self.repeats = base, device, repeats
        self.deadline = time.monotonic() + budget_s
        self.height, self.width = size
        self.sync: Callable[[], None] | None = (
            torch.cuda.synchronize if device.type == "cuda" else None
        )

    def out_of_time(self) -> bool:
        return time.monotonic() > self.deadline

    def model(self, channels_last: bool) -> FusionUNet:
        model = FusionUNet(self.base.config)
        model.load_state_dict(self.base.state_dict())
        model = model.to(self.device).eval()
        return model.to(memory_format=torch.channels_last) if channels_last else model

    def ms_per_image(
        self,
        net: Callable,
        batch: int,
        steps: int,
        channels_last: bool,
        bf16: bool,
        warmup: int = 2,
    ) -> float:
        x0, cond = inputs(batch, self.device, self.height, self.width)
        if channels_last:
            x0 = x0.contiguous(memory_format=torch.channels_last)
            for key in ("y_a", "y_b"):
                cond[key] = cond[key].contiguous(memory_format=torch.channels_last)

        def run() -> None:
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bf16):
                sample(net, x0, cond, steps, "euler")

        ms, _ = median_ms(run, self.repeats, warmup=warmup, sync=self.sync)
        return ms / batch


VARIANTS = {
    "fp32": (False, False),
    "channels_last": (True, False),
    "bf16": (False, True),
    "channels_last+bf16": (True, True),
}
"""Eager variant name -> (channels_last, bf16 autocast)."""


def _failed(err: BaseException) -> str:
    return f"failed ({type(err).__name__}: {str(err).splitlines()[0][:100] if str(err) else ''})"


def report_gpu(
    model: FusionUNet,
    repeats: int,
    batches: list[int],
    budget_s: float,
    device_name: str = "cuda",
    size: tuple[int, int] = (HEIGHT, WIDTH),
) -> dict:
    if device_name == "cuda" and not torch.cuda.is_available():
        print("\nGPU: not measured (torch.cuda.is_available() is false)")
        return {"available": False}
    device = torch.device(device_name)
    runner = GpuRunner(model, device, repeats, budget_s, size)
    height, width = size
    name = torch.cuda.get_device_name() if device.type == "cuda" else device_name
    print(
        f"\nGPU: {name}, {width}x{height}, Euler, ms per image, median of {repeats} after "
        f"warm-up, budget {budget_s:.0f} s"
    )
    result: dict = {"available": True, "device": name, "repeats": repeats, "skipped": []}

    eager = runner.model(False)
    result["fp32_batch1_ms_per_image"] = {}
    for steps in (1, 2, 4):
        try:
            ms = runner.ms_per_image(eager, 1, steps, False, False)
            result["fp32_batch1_ms_per_image"][str(steps)] = ms
            print(f"  fp32 batch 1, {steps} step(s): {ms:.2f} ms per image", flush=True)
        except Exception as err:  # noqa: BLE001 - a benchmark reports and goes on
            print(f"  fp32 batch 1, {steps} step(s): {_failed(err)}")

    print(f"  4 steps, batch sweep {batches}:")
    sweeps: dict[str, dict[int, float]] = {}
    for variant, (channels_last, bf16) in VARIANTS.items():
        net = runner.model(channels_last)
        sweeps[variant] = {}
        for batch in batches:
            if runner.out_of_time():
                result["skipped"].append(f"{variant} batch {batch}")
                continue
            try:
                sweeps[variant][batch] = runner.ms_per_image(net, batch, 4, channels_last, bf16)
            except torch.OutOfMemoryError:
                result["skipped"].append(f"{variant} batch {batch} (out of memory)")
                torch.cuda.empty_cache()
                break
            except Exception as err:  # noqa: BLE001
                print(f"    {variant} batch {batch}: {_failed(err)}")
                break
        _print_sweep(variant, sweeps[variant])
        del net
        if device.type == "cuda":
            torch.cuda.empty_cache()
    result["batch_sweep_ms_per_image"] = sweeps

    measured = {v: min(s.values()) for v, s in sweeps.items() if s}
    if measured:
        fastest = min(measured, key=measured.get)
        best_batch = min(sweeps[fastest], key=sweeps[fastest].get)
        channels_last, bf16 = VARIANTS[fastest]
        compiled_name = f"compile+{fastest}"
        compiled: dict[int, float] = {}
        try:
            net = torch.compile(runner.model(channels_last), dynamic=False)
            for batch in dict.fromkeys([best_batch, 1]):  # the throughput case first
                if runner.out_of_time():
                    result["skipped"].append(f"{compiled_name} batch {batch}")
                    continue
                began = time.monotonic()
                compiled[batch] = runner.ms_per_image(net, batch, 4, channels_last, bf16, warmup=3)
                print(
                    f"    ({compiled_name} batch {batch}: compiled and warmed up in "
                    f"{time.monotonic() - began:.0f} s)"
                )
        except Exception as err:  # noqa: BLE001
            print(f"    {compiled_name}: {_failed(err)}")
        if compiled:
            sweeps[compiled_name] = compiled
            _print_sweep(compiled_name, compiled)
        best = min(
            ((v, b, ms) for v, s in sweeps.items() for b, ms in s.items()), key=lambda r: r[2]
        )
        batch1 = {v: s[1] for v, s in sweeps.items() if 1 in s}
        result["best"] = {
            "variant": best[0],
            "batch": best[1],
            "ms_per_image": best[2],
            "images_per_second": 1e3 / best[2],
        }
        if batch1:
            v1 = min(batch1, key=batch1.get)
            result["best_batch1"] = {
                "variant": v1,
                "ms_per_image": batch1[v1],
                "images_per_second": 1e3 / batch1[v1],
            }
            print(
                f"  best at batch 1: {v1}, {batch1[v1]:.2f} ms per image "
                f"({1e3 / batch1[v1]:.0f} images/s)"
            )
        ips = 1e3 / best[2]
        result["target_images_per_second"] = TARGET_IMAGES_PER_SECOND
        result["target_met"] = ips >= TARGET_IMAGES_PER_SECOND
        print(
            f"  best overall: {best[0]} at batch {best[1]}, {best[2]:.2f} ms per image = "
            f"{ips:.0f} images/s at 4 steps (target >= {TARGET_IMAGES_PER_SECOND:.0f}: "
            f"{'met' if ips >= TARGET_IMAGES_PER_SECOND else 'NOT met'})"
        )
    if result["skipped"]:
        print(f"  skipped (budget or memory): {', '.join(result['skipped'])}")
    return result


def _print_sweep(variant: str, sweep: dict[int, float]) -> None:
    if not sweep:
        print(f"    {variant:<28} no measurement")
        return
    best = min(sweep, key=sweep.get)
    cells = ", ".join(f"b{b} {ms:.2f}" for b, ms in sweep.items())
    print(
        f"    {variant:<28} best batch {best}: {sweep[best]:.2f} ms/image "
        f"({1e3 / sweep[best]:.0f} images/s); {cells}",
        flush=True,
    )


def parse_model(text: str, base_channels: int) -> UNetConfig:
    overrides = json.loads(text) if text else {}
    if base_channels:
        overrides["base_channels"] = base_channels
    return UNetConfig(**overrides)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    parser.add_argument("--model", default="", help="UNetConfig overrides as JSON")
    parser.add_argument("--base-channels", type=int, default=0, help="shorthand for --model")
    parser.add_argument("--heun", action="store_true", help="also time Heun at 4 steps on CPU")
    parser.add_argument("--gpu-batches", default="1,2,4,8,16,32,64", help="batch sweep on GPU")
    parser.add_argument("--gpu-budget-s", type=float, default=100.0)
    parser.add_argument(
        "--gpu-device",
        default="cuda",
        help="device of the GPU part; 'cpu' with --gpu-size dry-runs its code path",
    )
    parser.add_argument("--gpu-size", default=f"{WIDTH}x{HEIGHT}", help="WxH of the GPU part")
    parser.add_argument("--skip", default="", help="comma list of: cpu, gpu")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    config = parse_model(args.model, args.base_channels)
    torch.manual_seed(0)
    model = FusionUNet(config).eval()

    info = machine_info()
    print(machine_line(info))
    print(f"model: {config.to_dict()}")
    payload: dict = {"benchmark": "student", "machine": info, "model": config.to_dict()}
    payload["cost"] = report_model(model)
    if "cpu" not in skip:
        payload["cpu"] = report_cpu(model, args.repeats, args.heun)
    if "gpu" not in skip:
        width, height = (int(v) for v in args.gpu_size.lower().split("x"))
        payload["gpu"] = report_gpu(
            model,
            args.repeats,
            [int(b) for b in args.gpu_batches.split(",")],
            args.gpu_budget_s,
            args.gpu_device,
            (height, width),
        )
    write_json(args.json, payload)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
