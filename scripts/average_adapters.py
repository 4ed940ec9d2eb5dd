"""Average two LoRA adapters of the same model into one (a weight "soup"), exactly.

Two adapters trained one after the other (a pass continued from the previous one) sit in the same basin; the mean
of their weight deltas is one model that may hold better on unseen data than either, at no cost when reading.
The mean of two low-rank deltas is itself low-rank: the ranks are concatenated (``A`` stacked, ``B`` side by
side, each weighted), so ``w·Δfirst + (1-w)·Δsecond`` is represented exactly at twice the rank; ``lora_alpha``
grows with the rank so that the scaling ``alpha / r`` stays the same. Whole modules saved beside the LoRA weights
(the reader's ``qa_outputs`` head) are averaged.

    python scripts/average_adapters.py pipeline/answering/reader_adapter pass5/ soup/ [--weight 0.5]

Measured with the reader's 4th and 5th passes in the README ("A média das duas passadas"); not shipped.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
from pathlib import Path

CONFIG, WEIGHTS = "adapter_config.json", "adapter_model.safetensors"
#: files kept beside the reader's adapter that still hold for the average: the first adapter's are copied. Its
#: abstention.json is not: it was calibrated on the first adapter's scores (refit it with
#: ``scripts/bench_answers.py --calibrate --abstention-out OUTPUT/abstention.json``; until then the reader abstains
#: by its no-answer margin), and its README describes another model.
COMPANIONS = ("rehearsal.jsonl",)


def _config(folder: Path) -> dict:
    path = folder / CONFIG
    if not path.is_file():
        raise ValueError(f"{folder}: not a PEFT adapter folder (no {CONFIG})")
    return json.loads(path.read_text(encoding="utf-8"))


def average_adapters(first: Path, second: Path, output: Path, weight: float = 0.5) -> Path:
    """Write to ``output`` (a new folder) the adapter whose delta is ``weight·Δfirst + (1-weight)·Δsecond``."""
    import torch
    from safetensors.torch import load_file, save_file

    first, second, output = Path(first), Path(second), Path(output)
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"weight must be within [0, 1], got {weight}")
    if output.exists():
        raise ValueError(f"{output} exists; choose a new folder")
    config, other = _config(first), _config(second)
    if config.get("peft_type") != "LORA":
        raise ValueError(f"{first}: a LoRA adapter is needed, not {config.get('peft_type')}")
    comparable = lambda c: {k: (sorted(v) if k == "target_modules" else v) for k, v in c.items()}  # noqa: E731
    if comparable(config) != comparable(other):
        differ = sorted(k for k in set(config) | set(other) if comparable(config).get(k) != comparable(other).get(k))
        raise ValueError(f"the two adapters differ in {', '.join(differ)}: they cannot be averaged")
    if config.get("rank_pattern") or config.get("alpha_pattern"):
        raise ValueError("adapters with per-module ranks or alphas (rank_pattern/alpha_pattern) are not supported")
    a, b = load_file(first / WEIGHTS), load_file(second / WEIGHTS)
    if set(a) != set(b):
        raise ValueError("the two adapters hold different tensors: they cannot be averaged")
    merged = {}
    for name, tensor in a.items():
        if ".lora_A." in name:  # (r, in): the two down-projections, stacked
            merged[name] = torch.cat([tensor, b[name]], dim=0)
        elif ".lora_B." in name:  # (out, r): the two up-projections side by side, each weighted
            merged[name] = torch.cat([weight * tensor, (1.0 - weight) * b[name]], dim=1)
        else:  # a module saved whole (e.g. the span head)
            merged[name] = weight * tensor + (1.0 - weight) * b[name]
    # the scaling stays alpha / r (alpha / sqrt(r) with rsLoRA) at twice the rank
    alpha = config["lora_alpha"] * (math.sqrt(2.0) if config.get("use_rslora") else 2)
    config = dict(config, r=2 * config["r"], lora_alpha=alpha)
    staging = output.with_name(output.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in merged.items()}, str(staging / WEIGHTS))
    (staging / CONFIG).write_text(json.dumps(config, indent=2), encoding="utf-8")
    for name in COMPANIONS:
        if (first / name).is_file():
            shutil.copy2(first / name, staging / name)
    staging.rename(output)  # whole or not at all
    return output


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first", type=Path)
    parser.add_argument("second", type=Path)
    parser.add_argument("output", type=Path, help="a new folder")
    parser.add_argument("--weight", type=float, default=0.5, help="weight of the first adapter (default 0.5)")
    args = parser.parse_args(argv)
    try:
        output = average_adapters(args.first, args.second, args.output, args.weight)
    except ValueError as exc:
        parser.error(str(exc))
    print(f"{output}\nrefit its abstention: READER_ADAPTER={output} python scripts/bench_answers.py --calibrate "
          f"--abstention-out {output / 'abstention.json'}")


if __name__ == "__main__":
    main()
