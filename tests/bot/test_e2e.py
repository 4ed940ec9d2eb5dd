"""End to end: the real PTB Application, the real Oráculo service with its real models and a real SQLite
database made by the migrations, driven through the fake Bot API exactly as Telegram would drive it.

/start → welcome; "Onde é sediada a UFMS?" → an answer citing UFMS with 👍/👎; 👍 → one feedback row;
👎 on the same answer → that same row changed, not a second one.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import func, select

from bot import texts
from bot.telegram.app import build_application
from pipeline.settings import Settings
from tests.fakes.telegram_server import CITIZEN, FakeTelegramServer, running_application

# The first question builds the QA set and the index and loads the models: minutes on two CPU cores.
FIRST_ANSWER_TIMEOUT_S = 900.0
QUESTION = "Onde é sediada a UFMS?"


def feedback_rows(database) -> list[tuple[int, int, int, int]]:
    from storage.models import Feedback

    with database.session() as session:
        return [(f.id, f.interaction_id, f.user_id, f.vote) for f in session.scalars(select(Feedback))]


def keyboard_of(call) -> list[tuple[str, str]]:
    return [(b["text"], b["callback_data"]) for row in call.json("reply_markup")["inline_keyboard"] for b in row]


def test_question_answer_and_change_of_vote_end_to_end(tmp_path):
    # Imported here so that a missing piece of the pipeline fails this test, not the collection of the others.
    from pipeline.documents.load import load_documents
    from pipeline.service import Oraculo
    from storage.models import Feedback, Interaction, User
    from storage.repository import hash_user_id

    async def main():
        async with FakeTelegramServer() as server:
            settings = Settings(DATA_DIR=tmp_path / "data", TELEGRAM_BOT_TOKEN=server.token,
                                TELEGRAM_BASE_URL=server.base_url)
            service = await asyncio.to_thread(Oraculo.from_settings, settings)
            ufms_title = next(d.title for d in load_documents(Path(settings.documents_dir)) if d.name == "UFMS")

            async with running_application(build_application(settings, service)):
                server.push_text("/start")
                [welcome] = await server.wait_for("sendMessage", timeout=60)
                assert welcome.result["text"].startswith("Olá, Maria!")
                assert f"• {ufms_title}" in welcome.result["text"]

                server.push_text(QUESTION)
                [_, answer] = await server.wait_for("sendMessage", count=2, timeout=FIRST_ANSWER_TIMEOUT_S)
                assert server.calls_to("sendChatAction")[0].params["action"] == "typing"
                shown = answer.result["text"]
                source_lines = [line for line in shown.splitlines() if line.startswith("📄 Fonte: ")]
                assert source_lines, shown
                cited = f"📄 Fonte: {ufms_title}"
                assert source_lines[0] == cited or source_lines[0].startswith(cited + ", "), shown
                [(_, up), (_, down)] = keyboard_of(answer)
                interaction_id = int(up.split(":")[1])
                assert (up, down) == (f"fb:{interaction_id}:up", f"fb:{interaction_id}:down")

                with service.database.session() as session:
                    interaction = session.get(Interaction, interaction_id)
                    assert interaction.question == QUESTION and interaction.channel == "telegram"
                    assert interaction.sources[0]["document"] == "UFMS"
                    assert not interaction.abstained
                    # Only a salted hash of the Telegram id is kept.
                    hashes = list(session.scalars(select(User.user_hash)))
                    assert hashes == [hash_user_id(CITIZEN["id"], salt=settings.salt())]

                server.push_callback(up, message=answer.result)
                [ack] = await server.wait_for("answerCallbackQuery", timeout=60)
                assert ack.params["text"] == texts.FEEDBACK_THANKS
                [(row_id, row_interaction, user_id, vote)] = feedback_rows(service.database)
                assert (row_interaction, vote) == (interaction_id, 1)

                server.push_callback(down, message=answer.result)
                [_, ack] = await server.wait_for("answerCallbackQuery", count=2, timeout=60)
                assert ack.params["text"] == texts.FEEDBACK_CHANGED
                assert feedback_rows(service.database) == [(row_id, interaction_id, user_id, -1)]
                [_, edit] = await server.wait_for("editMessageReplyMarkup", count=2, timeout=60)
                assert [label for label, _ in keyboard_of(edit)] == [texts.BUTTON_UP,
                                                                     texts.CHOSEN_MARK + texts.BUTTON_DOWN]

            with service.database.session() as session:
                assert session.scalar(select(func.count()).select_from(Feedback)) == 1

    asyncio.run(main())
