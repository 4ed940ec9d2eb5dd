"""The fakes stand where the real objects stand: same protocols, same dataclasses."""

from __future__ import annotations

from types import SimpleNamespace

from pipeline.answering.answer import Answerer
from pipeline.answering.result import Answer, Source
from pipeline.core.query import Query
from pipeline.service import AnswerEngine, AskResult, Oraculo, Service
from tests.fakes.oraculo import CannedAnswerer, FakeOraculo, canned_answer


def test_the_real_and_the_fake_service_meet_the_protocol_the_bot_uses(settings):
    real = Oraculo(settings, answerer=CannedAnswerer())
    assert isinstance(real, Service) and isinstance(FakeOraculo(), Service)
    assert not isinstance(object(), Service)  # the check looks at the members


def test_the_real_and_the_canned_answerer_meet_the_protocol_the_service_uses(settings):
    # the check reads every member, index_version included: give the real one an index version without an index
    real = Answerer(settings, retriever=SimpleNamespace(version="v1"))
    assert isinstance(real, AnswerEngine) and real.index_version == "v1"
    assert isinstance(CannedAnswerer(), AnswerEngine) and not CannedAnswerer().has_chunk("UFMS:0-90")


def test_the_fakes_answer_with_the_real_dataclasses():
    result = FakeOraculo().ask("Onde fica?", user_ref=1, channel="telegram")
    assert type(result) is AskResult and type(result.answer) is Answer
    assert all(type(s) is Source for s in canned_answer("Em Campo Grande.").sources)
    assert type(CannedAnswerer().answer(Query.of("Onde fica a UFMS?"))) is Answer
