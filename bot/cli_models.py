"""The `oraculo` commands about models: train, retrain (the nightly loop now), merge, push, cost.

Example::

    oraculo train --what reader        # the reader's adapter on citizens' votes
    oraculo retrain --json             # the nightly loop now
    oraculo cost                       # the last run and the month, in USD and BRL
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields
from pathlib import Path

from pydantic import ValidationError

from pipeline.settings import get_settings
from pipeline.training.args import TrainArgs

# The commands import their jobs when they run: those load SQLAlchemy, and `oraculo --help` needs none of them.


def settings_or_exit():
    """The configuration, or exit with the validation errors (never a traceback)."""
    try:
        return get_settings()
    except ValidationError as exc:
        raise SystemExit(f"error: invalid configuration:\n{exc}") from None


def cmd_train(args) -> int:
    from pipeline.loop.reader_job import ReaderRunArgs, train_reader_run
    from pipeline.training.train import main as train_main

    settings = settings_or_exit()
    if args.what == "reader" or (args.what == "auto" and settings.answer_strategy == "reader"):
        run_args = ReaderRunArgs(**{k: v for k, v in (("max_steps", args.max_steps), ("batch_size", args.batch_size),
                                                          ("lr", args.lr), ("seed", args.seed)) if v is not None})
        try:
            result = train_reader_run(settings, run_args)
        except (ValueError, FileNotFoundError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        metrics = result["metrics"]
        print(f"run {result['run_id']}: reader adapter {result['adapter_dir']}")
        print(f"{metrics['positives']} 👍, {metrics['negatives']} 👎, {metrics['replay']} replayed; "
              f"steps {metrics['steps']}, loss {metrics['train_loss_last']}")
        return 0
    values = {f.name: getattr(args, f.name) for f in fields(TrainArgs) if getattr(args, f.name, None) is not None}
    try:
        result = train_main(TrainArgs(**values), settings=settings_or_exit())
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not result:  # not the main process of a multi-process (accelerate launch / torchrun) run
        return 0
    metrics = result["metrics"]
    print(f"run {result['run_id']}: adapter {result['adapter_dir']}")
    print(f"steps {metrics['steps']}, val loss {metrics['val_loss']}, {metrics['tokens_per_s']:.0f} tokens/s")
    return 0


def cmd_retrain(args) -> int:
    from pipeline.loop.nightly import RetrainBusy, RetrainFailed, retrain_job

    try:
        report = retrain_job(settings_or_exit(), trigger="cli")
    except RetrainBusy as exc:
        print(f"busy: {exc}", file=sys.stderr)
        return 3
    except RetrainFailed as exc:
        report = exc.report
    for step in report.steps:
        print(f"{step.name:9s} {step.seconds:7.1f}s  {json.dumps(step.detail, ensure_ascii=False, default=str)[:300]}")
    print(f"{'ok' if report.ok else 'FAILED'} in {report.duration_s:.1f}s: {report.error or report.reason}")
    print(f"serving: {report.serving_before} -> {report.serving_after}")
    if args.json:
        print(json.dumps(report.as_dict(), ensure_ascii=False, default=str))
    return 0 if report.ok else 1


def cmd_merge(args) -> int:
    from pipeline.training.merge import merge_run

    try:
        print(f"merged model -> {merge_run(settings_or_exit(), args.run, output=args.output)}")
    except LookupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_push(args) -> int:
    from pipeline.training.publish import PublishError, push_run

    try:
        url = push_run(settings_or_exit(), args.run, what=args.what)
    except PublishError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"pushed to {url}")
    return 0


def cmd_cost(args) -> int:
    from pipeline.training.cost import cost_report

    report = cost_report(settings_or_exit())
    last = report["last"]
    if last is None:
        print("no training run yet")
    else:
        brl = "unknown (no USD->BRL quote)" if last["cost_brl"] is None else f"R$ {last['cost_brl']:.2f}"
        print(f"last run {last['id']} ({last['status']}, {last['started_at']}): {last['duration_s'] or 0:.0f} s, "
              f"US$ {last['cost_usd'] or 0:.4f}, {brl}")
        if last["usd_brl"]:
            print(f"  USD->BRL {last['usd_brl']:.4f} at {last['usd_brl_at']} ({last['quote_source'] or 'live'})"
                  + (f": {last['quote_note']}" if last["quote_note"] else ""))
    print(f"month {report['month']}: {report['month_runs']} runs, US$ {report['month_usd']:.4f}, "
          f"R$ {report['month_brl']:.2f}" + (f" (only the runs with a USD->BRL rate; without one: "
                                              f"{', '.join(str(i) for i in report['month_runs_without_rate'])})"
                                              if report["month_runs_without_rate"] else ""))
    if report["month_runs_interrupted"]:
        print(f"  interrupted (process gone, costed up to its last heartbeat): "
              f"{', '.join(str(i) for i in report['month_runs_interrupted'])}")
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    return 0


def _add_train_parser(sub) -> None:
    p = sub.add_parser("train",
                       help="train a LoRA adapter: the reader's on citizens' votes, or the LLM's on QA records")
    p.add_argument("--what", choices=["auto", "reader", "llm"], default="auto",
                   help="auto: the reader when ANSWER_STRATEGY=reader, else the LLM")
    defaults = TrainArgs()
    for name, value in vars(defaults).items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=None)
        else:
            kind = type(value) if value is not None else str
            p.add_argument(flag, type=kind, default=None, help=f"default: {value}")
    p.set_defaults(func=cmd_train)


def add_model_commands(sub) -> None:
    """train, retrain, merge, push, cost."""
    _add_train_parser(sub)

    p = sub.add_parser("retrain", help="the nightly loop now: export feedback, index, train, evaluate, promote")
    p.add_argument("--json", action="store_true", help="last line of stdout: the run's record as JSON")
    p.set_defaults(func=cmd_retrain)

    p = sub.add_parser("merge", help="merge a run's adapter into its base model (stand-alone folder)")
    p.add_argument("run", nargs="?", default="latest", help="run id, adapter version or folder (default latest)")
    p.add_argument("--output", type=Path, help="target folder (default DATA_DIR/models/merged/<version>)")
    p.set_defaults(func=cmd_merge)

    p = sub.add_parser("push", help="publish a run to the Hugging Face Hub (needs HF_TOKEN, HF_REPO_ID)")
    p.add_argument("run", nargs="?", default="latest", help="run id, adapter version or folder (default latest)")
    p.add_argument("--what", choices=["adapter", "merged", "both"], default="both")
    p.set_defaults(func=cmd_push)

    p = sub.add_parser("cost", help="cost of the last training run and of the month")
    p.add_argument("--json", action="store_true", help="last line of stdout: one JSON object")
    p.set_defaults(func=cmd_cost)
