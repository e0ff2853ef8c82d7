"""Mutation check: plant known bugs one at a time in a copy of the repository and run the tests
that should catch each; every bug must make them fail.

Each mutant is a plausible slip (the model fed x_0 instead of x_t, a detached EWC term, SSIM with
the population covariance, ...) written as exact text replacements in ``src/``. The copy is made
once (the files git tracks plus the untracked ones it does not ignore), its ``src`` goes first on
``PYTHONPATH``, and each mutant's file is restored after its run. A replacement whose text is not
found exactly once stops the check: the code moved, update the mutant.

Usage::

    python tests/mutation_check.py              # every mutant (about 2 minutes on 2 cores)
    python tests/mutation_check.py --list
    python tests/mutation_check.py ewc-detached fuse-no-solve

Exit status 0 when every mutant is caught and the unmutated copy passes the same tests.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from end_to_end import copy_working_tree  # noqa: E402  (the files git tracks or would add)


@dataclass(frozen=True)
class Mutant:
    name: str
    what: str
    path: str
    replacements: tuple[tuple[str, str], ...]
    tests: tuple[str, ...]


TRAINER = "src/fusionfm/train/trainer.py"
TRAINING_TESTS = ("tests/unit/test_training_values.py",)

MUTANTS: tuple[Mutant, ...] = (
    Mutant(
        "model-sees-x0",
        "the model is given x_0 instead of x_t",
        TRAINER,
        (("pred = model(sample.x_t, sample.t,", "pred = model(sample.x_0, sample.t,"),),
        TRAINING_TESTS,
    ),
    Mutant(
        "t-always-zero",
        "every sampled time t is 0",
        TRAINER,
        (
            (
                'batch["t"] = torch.rand(x_0.shape[0], generator=generator)',
                'batch["t"] = torch.zeros(x_0.shape[0])',
            ),
        ),
        TRAINING_TESTS,
    ),
    Mutant(
        "velocity-reversed",
        "the regression target is x_0 - x_1",
        "src/fusionfm/path.py",
        (("        dx_t = x_1 - x_0\n", "        dx_t = x_0 - x_1\n"),),
        TRAINING_TESTS,
    ),
    Mutant(
        "ewc-detached",
        "the EWC term is detached: it never reaches the weights",
        TRAINER,
        (
            (
                "ewc_term = ewc.penalty(model) if ewc.active",
                "ewc_term = ewc.penalty(model).detach() if ewc.active",
            ),
        ),
        TRAINING_TESTS,
    ),
    Mutant(
        "replay-swapped",
        "replayed items are swapped for crops of the current task",
        TRAINER,
        (
            (
                "extra = torch.stack([_fit_crop(item[name], config.crop) for _, item in drawn])",
                "extra = batch[name][: len(drawn)].clone()",
            ),
        ),
        TRAINING_TESTS,
    ),
    Mutant(
        "later-fisher-zero",
        "the Fisher of the second and later tasks is all zeros",
        "src/fusionfm/continual/ewc.py",
        (
            (
                "self.fisher[name] = self.fisher[name] + f.to(self.fisher[name].device)",
                "self.fisher[name] = self.fisher[name] + 0 * f.to(self.fisher[name].device)",
            ),
        ),
        TRAINING_TESTS,
    ),
    Mutant(
        "no-clipping",
        "gradient clipping is off",
        TRAINER,
        (
            (
                "        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)\n",
                "        pass\n",
            ),
        ),
        TRAINING_TESTS,
    ),
    Mutant(
        "no-lr-schedule",
        "the learning-rate schedule is never applied",
        TRAINER,
        (('            group["lr"] = lr\n', '            group["scheduled_lr"] = lr\n'),),
        TRAINING_TESTS,
    ),
    Mutant(
        "fisher-touches-grad",
        "estimate_fisher uses backward(), overwriting the model's .grad",
        "src/fusionfm/continual/ewc.py",
        (
            (
                "        grads = torch.autograd.grad(loss, params, allow_unused=True)\n",
                "        model.zero_grad()\n        loss.backward()\n"
                "        grads = [p.grad for p in params]\n",
            ),
        ),
        ("tests/unit/test_ewc.py",),
    ),
    Mutant(
        "resume-replay-differs",
        "a resumed run fills the replay buffer from another random stream",
        TRAINER,
        (
            (
                "replay_gen = torch.Generator().manual_seed(config.seed + 2)",
                "replay_gen = torch.Generator().manual_seed(config.seed + 2 + start_step)",
            ),
        ),
        ("tests/unit/test_trainer.py::test_killed_run_resumes_to_identical_weights",),
    ),
    Mutant(
        "fuse-no-solve",
        "fuse_luminance returns the start image without solving",
        "src/fusionfm/fuse.py",
        (
            (
                'x1 = sample(model, x0, {"y_a": ya, "y_b": yb, "task": task_id}, steps, method)',
                "x1 = x0",
            ),
        ),
        ("tests/unit/test_fuse.py",),
    ),
    Mutant(
        "fuse-no-scaling",
        "fuse_luminance feeds the sources on the 0-255 scale (no /255)",
        "src/fusionfm/fuse.py",
        (
            ("torch.as_tensor(np.asarray(y_a) / 255.0,", "torch.as_tensor(np.asarray(y_a) / 1.0,"),
            ("torch.as_tensor(np.asarray(y_b) / 255.0,", "torch.as_tensor(np.asarray(y_b) / 1.0,"),
        ),
        ("tests/unit/test_fuse.py",),
    ),
    Mutant(
        "evaluate-scores-source",
        "the evaluation scores source A instead of the student's image",
        "src/fusionfm/evaluate.py",
        (("jobs.append((fused, a, b, gt, task))", "jobs.append((a, a, b, gt, task))"),),
        ("tests/unit/test_evaluate.py",),
    ),
    Mutant(
        "refiner-no-tolerance",
        "the refiner's tolerance rule is deleted",
        "src/fusionfm/refine/refiner.py",
        (
            (
                "allowed = worst_drop <= refiner_config.tolerance and math.isfinite(composite)",
                "allowed = math.isfinite(composite)",
            ),
        ),
        ("tests/unit/test_refiner.py",),
    ),
    Mutant(
        "reservoir-off-by-one",
        "the reservoir draws its slot from one value too few",
        "src/fusionfm/continual/replay.py",
        (
            (
                "j = int(torch.randint(seen, (1,), generator=self.generator))",
                "j = int(torch.randint(seen - 1, (1,), generator=self.generator))",
            ),
        ),
        ("tests/unit/test_replay.py",),
    ),
    Mutant(
        "keep-probability-wrong",
        "expected_keep_probability divides by seen + 1",
        "src/fusionfm/continual/replay.py",
        (
            (
                "return 1.0 if seen <= capacity else capacity / seen",
                "return 1.0 if seen <= capacity else capacity / (seen + 1)",
            ),
        ),
        ("tests/unit/test_replay.py",),
    ),
    Mutant(
        "ssim-population-covariance",
        "evaluator SSIM with the population instead of the sample covariance",
        "src/fusionfm/metrics/ssim.py",
        (("        covariance_norm=49 / 48,\n", "        covariance_norm=1.0,\n"),),
        ("tests/metrics/test_reference_values.py",),
    ),
    Mutant(
        "luma-left-to-right",
        "the luma sum evaluated left to right instead of the pinned order",
        "src/fusionfm/color.py",
        (
            (
                "return np.round(_fma(blue, weight_b, _fma(red, weight_r, weight_g * green)))",
                "return np.round(weight_r * red + weight_g * green + weight_b * blue)",
            ),
        ),
        ("tests/metrics/test_reference_values.py",),
    ),
)


def _run_tests(copy: Path, tests: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(copy / "src"), environment.get("PYTHONPATH")])
    )
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests],
        cwd=copy,
        env=environment,
        capture_output=True,
        text=True,
    )


def _apply(copy: Path, mutant: Mutant) -> str:
    """Plant the mutant; return the file's original text."""
    path = copy / mutant.path
    original = text = path.read_text()
    for old, new in mutant.replacements:
        count = text.count(old)
        if count != 1:
            raise SystemExit(
                f"mutant {mutant.name}: {old.strip()!r} occurs {count} times in {mutant.path}; "
                "the code moved, update the mutant"
            )
        text = text.replace(old, new)
    path.write_text(text)
    return original


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="mutants to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    args = parser.parse_args()
    if args.list:
        for mutant in MUTANTS:
            print(f"{mutant.name:28} {mutant.what}")
        return 0
    unknown = set(args.names) - {m.name for m in MUTANTS}
    if unknown:
        parser.error(f"unknown mutant(s): {', '.join(sorted(unknown))}")
    chosen = [m for m in MUTANTS if not args.names or m.name in args.names]
    with tempfile.TemporaryDirectory(prefix="fusionfm-mutants-") as folder:
        copy = Path(folder)
        copy_working_tree(REPO, copy)
        tests = tuple(dict.fromkeys(t for m in chosen for t in m.tests))
        baseline = _run_tests(copy, tests)
        if baseline.returncode != 0:
            print(baseline.stdout[-3000:], baseline.stderr[-2000:])
            print("the unmutated copy fails its tests: fix that first")
            return 1
        print(f"baseline: {len(tests)} test target(s) pass unmutated")
        missed = []
        for mutant in chosen:
            original = _apply(copy, mutant)
            began = time.perf_counter()
            try:
                result = _run_tests(copy, mutant.tests)
            finally:
                (copy / mutant.path).write_text(original)
            seconds = time.perf_counter() - began
            failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED")]
            if result.returncode == 1 and failed:
                verdict = f"caught  by {failed[0].removeprefix('FAILED ').split(' - ')[0]}"
            else:
                verdict = f"MISSED  (pytest exit {result.returncode})"
                missed.append(mutant.name)
            print(f"{mutant.name:28} {verdict}  [{seconds:.0f} s]  ({mutant.what})")
    print(f"{len(chosen) - len(missed)} of {len(chosen)} mutants caught")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
