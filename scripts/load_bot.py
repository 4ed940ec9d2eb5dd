"""Load test of the Telegram bot: simulated citizens ask and vote through the fake Bot API, which fails a
share of its replies (429 with retry_after=1, or 500), against the real Oráculo service and a fresh SQLite
database. Reports questions answered, feedback rows stored vs votes cast (must be equal), p50/p95 time from
update to answer, and peak memory (bot, service and fake server share this one process).

Run (the first run builds QA pairs and the index unless --index-from points at a DATA_DIR that has them)::

    python scripts/load_bot.py --users 100 --questions 10 --failure-rate 0.05 --index-from data
    python scripts/load_bot.py --users 10 --questions 3 --strategy generative --index-from data

Each user arrives at a random moment within ``--ramp-s`` seconds, asks, waits for the answer, presses 👍 or
👎 on it (when it has buttons), waits for the acknowledgement, thinks for ``--think-s`` seconds (exponential)
and asks again. Time to answer = from the update entering the fake server's queue to the complete answer
(the message with the buttons, or the final "not found") reaching it. The last line is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, select  # noqa: E402

from bot import texts  # noqa: E402
from bot.telegram.app import build_application  # noqa: E402
from pipeline.service import Oraculo  # noqa: E402
from pipeline.settings import Settings  # noqa: E402
from storage.models import Feedback, Interaction  # noqa: E402
from tests.fakes.telegram_server import FakeTelegramServer, running_application  # noqa: E402

FINAL_TEXTS = {texts.escape(texts.NOT_FOUND), texts.NOT_FOUND, texts.ERROR}
OFF_TOPIC = ["Qual a capital da França?", "Como faço bolo de cenoura?", "Quem ganhou a Copa de 2002?"]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=100)
    p.add_argument("--questions", type=int, default=10, help="questions per user")
    p.add_argument("--failure-rate", type=float, default=0.05, help="share of Bot API replies that are 429/500")
    p.add_argument("--think-s", type=float, default=20.0,
                   help="mean pause of a user between actions (reading the answer, typing the next question)")
    p.add_argument("--ramp-s", type=float, default=None,
                   help="users start at uniform random times within this window (default: --think-s)")
    p.add_argument("--strategy", choices=["reader", "extractive", "generative"], default="reader",
                   help="the answer strategy (default: the product's default, the reader)")
    p.add_argument("--index-from", type=Path, help="a DATA_DIR whose index/ and data_qa/ are reused")
    p.add_argument("--canned", action="store_true", help="canned answers (tests): only the bot and the database")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.ramp_s is None:
        args.ramp_s = args.think_s
    return args


def load_questions(settings: Settings, seed: int) -> list[str]:
    from pipeline.qa.records import qa_records

    if not settings.qa_dir.exists():  # --canned without an index: any questions will do
        return [f"Pergunta {i} sobre a UFMS?" for i in range(100)] + OFF_TOPIC
    questions = [r["question"] for r in qa_records(settings) if r.get("question")]
    random.Random(seed).shuffle(questions)
    return questions[:2000] + OFF_TOPIC


class Inbox:
    """Per-chat queues of what the bot sent, fed by the fake server's listener (no O(n²) polling)."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.answers: dict[str, asyncio.Queue] = defaultdict(asyncio.Queue)
        self.acks: dict[str, asyncio.Queue] = defaultdict(asyncio.Queue)
        self.callback_chat: dict[str, str] = {}  # callback query id -> chat id

    def __call__(self, call) -> None:
        if call.status != 200:
            return
        if call.method in ("sendMessage", "editMessageText"):
            # Complete = it carries the 👍/👎 buttons, or it is the final "not found"/error text. Not the
            # growing message of a streamed answer, nor the 'what was wrong?' prompt after a 👎.
            markup = json.loads(call.params.get("reply_markup", "{}"))
            if "inline_keyboard" in markup or call.params.get("text") in FINAL_TEXTS:
                self.answers[call.params["chat_id"]].put_nowait((self.loop.time(), call))
        elif call.method == "answerCallbackQuery":
            chat = self.callback_chat.get(call.params["callback_query_id"])
            if chat is not None:
                self.acks[chat].put_nowait(call)


async def citizen(server, inbox: Inbox, user: dict, questions: list[str], args, rng: random.Random,
                  stats: dict) -> None:
    chat = str(user["id"])
    await asyncio.sleep(rng.uniform(0, args.ramp_s))  # people do not all arrive in the same instant
    for question in questions:
        started = inbox.loop.time()
        server.push_text(question, user=user)
        at, answer = await asyncio.wait_for(inbox.answers[chat].get(), 600)
        stats["latencies"].append(at - started)
        stats["answered"] += 1
        markup = json.loads(answer.params.get("reply_markup", "{}")).get("inline_keyboard")
        if markup:
            up, down = (b["callback_data"] for b in markup[0])
            query = server.push_callback(rng.choice([up, down]), message=answer.result, user=user)
            inbox.callback_chat[query["id"]] = chat
            stats["votes"] += 1
            await asyncio.wait_for(inbox.acks[chat].get(), 600)
        else:
            stats["no_buttons"] += 1
        await asyncio.sleep(rng.expovariate(1 / args.think_s) if args.think_s > 0 else 0)


async def run(args) -> dict:
    data_dir = Path(tempfile.mkdtemp(prefix="oraculo-load-"))
    if args.index_from:
        for name in ("index", "data_qa"):
            if (args.index_from / name).exists():
                shutil.copytree(args.index_from / name, data_dir / name)
    async with FakeTelegramServer(failure_rate=args.failure_rate, seed=args.seed) as server:
        settings = Settings(DATA_DIR=data_dir, DOCUMENTS_DIR="sample", TELEGRAM_BOT_TOKEN=server.token,
                            TELEGRAM_BASE_URL=server.base_url,
                            ANSWER_STRATEGY=args.strategy, RATE_LIMIT_QUESTIONS=max(1000, args.questions))
        if args.canned:
            from tests.fakes.oraculo import CannedAnswerer

            service = Oraculo(settings, answerer=CannedAnswerer())
            service.database.upgrade()
        else:
            service = await asyncio.to_thread(Oraculo.from_settings, settings)
        warm = time.perf_counter()
        await asyncio.to_thread(service.warm_up)
        warm_s = time.perf_counter() - warm
        pool = load_questions(settings, args.seed)
        rng = random.Random(args.seed)
        users = [{"id": 100_000 + i, "is_bot": False, "first_name": f"Cidadão {i}"} for i in range(args.users)]
        stats = {"latencies": [], "answered": 0, "votes": 0, "no_buttons": 0}
        inbox = Inbox(asyncio.get_running_loop())
        server.listeners.append(inbox)
        app = build_application(settings, service)
        async with running_application(app):
            started = time.perf_counter()
            await asyncio.gather(*(citizen(server, inbox, user, rng.sample(pool, args.questions), args,
                                           random.Random(args.seed + user["id"]), stats) for user in users))
            wall = time.perf_counter() - started
            await asyncio.sleep(0.5)  # acknowledgements' edits and prompts still in flight
        with service.database.session() as session:
            interactions = session.scalar(select(func.count()).select_from(Interaction))
            feedback_rows = session.scalar(select(func.count()).select_from(Feedback))
            service_ms = sorted(session.scalars(select(Interaction.latency_ms)))
        latencies = sorted(stats["latencies"])
        q = statistics.quantiles(latencies, n=100, method="inclusive") if len(latencies) > 1 else latencies * 99
        report = {
            "users": args.users, "questions_per_user": args.questions, "strategy": args.strategy,
            "failure_rate": args.failure_rate, "think_s": args.think_s, "ramp_s": args.ramp_s,
            "questions_sent": args.users * args.questions, "answered": stats["answered"],
            "interactions_stored": interactions, "votes_cast": stats["votes"], "feedback_rows": feedback_rows,
            "abstentions_without_buttons": stats["no_buttons"],
            "p50_s": round(q[49], 3), "p95_s": round(q[94], 3), "max_s": round(latencies[-1], 3),
            "service_p50_ms": round(statistics.median(service_ms), 1) if service_ms else None,
            # the answer path alone (retrieval + answer, as logged per interaction), without Telegram's side
            "service_p95_ms": round(service_ms[int(0.95 * (len(service_ms) - 1))], 1) if service_ms else None,
            "wall_s": round(wall, 1), "throughput_qps": round(stats["answered"] / wall, 2),
            "warm_up_s": round(warm_s, 1),
            "injected_failures": dict(server.random_failures),
            "bot_api_calls": len(server.calls),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "load_average": os.getloadavg(), "cpus": os.cpu_count(),
        }
        report["exact"] = (report["answered"] == report["questions_sent"] == interactions
                           and feedback_rows == stats["votes"])
    shutil.rmtree(data_dir, ignore_errors=True)
    return report


def main(argv=None) -> int:
    args = parse_args(argv)
    report = asyncio.run(run(args))
    for key, value in report.items():
        print(f"{key:>28}: {value}")
    print(json.dumps(report, ensure_ascii=False))
    return 0 if report["exact"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
