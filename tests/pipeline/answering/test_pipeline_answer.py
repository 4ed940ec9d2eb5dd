"""Answering: extractive and generative strategies, abstention, sources, lazy loading from settings."""

from __future__ import annotations

import pytest

from pipeline.answering.answer import Answerer, content_terms
from pipeline.answering.result import is_grounded
from pipeline.llm.prompt import NOT_FOUND_MARKER, SYSTEM_PROMPT, build_messages
from pipeline.settings import Settings


class FakeLLM:
    """A stand-in LLM with a queue of canned replies and a history of the messages it received."""

    version = "fake-llm"

    def __init__(self, *replies: str) -> None:
        self.replies = list(replies)
        self.calls: list[tuple[list[dict], int]] = []

    def generate(self, messages, *, max_new_tokens):
        self.calls.append((messages, max_new_tokens))
        return self.replies.pop(0)


def generative(settings: Settings, **overrides) -> Settings:
    return settings.model_copy(update={"answer_strategy": "generative", **overrides})


def extractive(settings: Settings) -> Settings:
    return settings.model_copy(update={"answer_strategy": "extractive"})


POSCOMP_QUESTION = "Desde quando o POSCOMP passou a ser realizado no Peru?"  # FaQuAD; gold answer "2006"


@pytest.mark.parametrize("question", [POSCOMP_QUESTION, "  desde quando o poscomp e realizado no peru "])
def test_extractive_answer_quotes_the_right_document(session_settings, retriever, question):
    answerer = Answerer(extractive(session_settings), retriever=retriever)
    answer = answerer.answer(question)
    assert not answer.abstained and answer.strategy == "extractive" and answer.model_version == "extractive"
    first = answer.sources[0]
    assert (first.document, first.title) == ("POSCOMP", "Poscomp")
    assert "2006" in answer.text and answer.text in first.quote and "desde 2006" in first.quote
    assert len(answer.text) < len(first.quote) / 2  # a span that answers, quoted with the sentence holding it
    chunk = next(c for c in retriever.chunks if c.id == first.chunk_id)
    assert first.quote in chunk.text and len(first.quote) < len(chunk.text)  # a sentence, not the chunk
    assert answer.index_version == retriever.version and answer.latency_ms > 0
    assert 0 < len(answer.sources) <= extractive(session_settings).top_k
    assert len({s.chunk_id for s in answer.sources}) == len(answer.sources)


def test_extractive_answer_picks_the_sentence_that_answers(session_settings, retriever):
    answer = Answerer(extractive(session_settings), retriever=retriever).answer(
        "Gestantes poderão ser ajudadas pelo regime de exercícios a partir de qual mês de gestação?")
    assert answer.sources[0].document == "EXERCICIOS_DOMICILIARES" and "oitavo mês" in answer.sources[0].quote
    assert answer.text in answer.sources[0].quote  # the span comes from the quoted sentence


@pytest.mark.parametrize("question", ["Qual a receita de bolo de cenoura?", "Como trocar o óleo do carro?",
                                      "What is the weather today?", "O que é isso?"])
@pytest.mark.parametrize("strategy", ["reader", "extractive"])
def test_off_topic_questions_abstain(session_settings, retriever, question, strategy):
    settings = session_settings.model_copy(update={"answer_strategy": strategy})
    answer = Answerer(settings, retriever=retriever).answer(question)
    assert answer.abstained and answer.text == "" and answer.sources == []


@pytest.mark.parametrize("question", ["", "   ", None])
def test_empty_question_is_an_error(session_settings, retriever, question):
    with pytest.raises(ValueError):
        Answerer(session_settings, retriever=retriever).answer(question)


def test_generative_prompt_is_portuguese_and_carries_the_context(session_settings, retriever):
    reply = "A FAPDF tem por finalidade estimular e apoiar o desenvolvimento científico do Distrito Federal."
    llm = FakeLLM(reply)
    answerer = Answerer(generative(session_settings, max_new_tokens=40), retriever=retriever, llm=llm)
    answer = answerer.answer("Qual a finalidade da FAPDF?")
    assert answer.text == reply and answer.sources[0].document == "FAPDF"
    assert answer.strategy == "generative" and answer.model_version == "fake-llm" and not answer.abstained
    messages, max_new_tokens = llm.calls[0]
    assert max_new_tokens == 40
    assert messages[0] == {"role": "system", "content": SYSTEM_PROMPT} and "português do Brasil" in SYSTEM_PROMPT
    assert messages[1]["content"].endswith("Pergunta: Qual a finalidade da FAPDF?")
    for source in answer.sources:  # every cited chunk was in the prompt
        chunk = next(c for c in retriever.chunks if c.id == source.chunk_id)
        assert chunk.text in messages[1]["content"]


def test_generative_falls_back_to_extractive_when_the_model_echoes_or_invents(session_settings, retriever):
    llm = FakeLLM(POSCOMP_QUESTION, "Pizza marguerita com manjericão e azeite trufado.", "")
    answerer = Answerer(generative(session_settings), retriever=retriever, llm=llm)
    for _ in range(3):  # an echo of the question, an invention, nothing
        answer = answerer.answer(POSCOMP_QUESTION)
        assert answer.strategy == "extractive" and "2006" in answer.text and not answer.abstained
    assert len(llm.calls) == 3


def test_generated_number_absent_from_the_context_is_not_grounded(session_settings, retriever):
    made_up = "O POSCOMP passou a ser realizado no Peru desde 2011, em parceria com a Sociedade Peruana."
    answerer = Answerer(generative(session_settings), retriever=retriever, llm=FakeLLM(made_up))
    answer = answerer.answer(POSCOMP_QUESTION)
    assert answer.strategy == "extractive" and "2006" in answer.text and "2011" not in answer.text
    assert is_grounded(made_up.replace("2011", "2006"), question=POSCOMP_QUESTION,
                       context_terms=set(content_terms(answer.sources[0].quote + " Sociedade Peruana parceria")),
                       context_text=answer.sources[0].quote)
    assert not is_grounded(made_up, question=POSCOMP_QUESTION,
                           context_terms=set(content_terms(answer.sources[0].quote + " Sociedade Peruana parceria")),
                           context_text=answer.sources[0].quote)


class StreamingFakeLLM(FakeLLM):
    """Streams each canned reply word by word (or in pieces of ``piece`` characters)."""

    def __init__(self, *replies: str, piece: int = 0) -> None:
        super().__init__(*replies)
        self.piece = piece

    def stream(self, messages, *, max_new_tokens):
        self.calls.append((messages, max_new_tokens))
        reply = self.replies.pop(0)
        if self.piece:
            yield from (reply[i:i + self.piece] for i in range(0, len(reply), self.piece))
        else:
            yield from (word + " " for word in reply.split(" "))


def test_generative_answer_streams_its_growing_text(session_settings, retriever):
    reply = "A FAPDF tem por finalidade estimular e apoiar o desenvolvimento científico do Distrito Federal."
    seen: list[str] = []
    answerer = Answerer(generative(session_settings), retriever=retriever, llm=StreamingFakeLLM(reply))
    answer = answerer.answer("Qual a finalidade da FAPDF?", on_partial=seen.append)
    assert answer.text == reply and answer.strategy == "generative"
    assert len(seen) == len(reply.split(" ")) and seen[-1] == reply
    assert all(b.startswith(a) for a, b in zip(seen, seen[1:]))  # it only grows


def test_the_not_found_marker_is_never_streamed(session_settings, retriever):
    seen: list[str] = []
    answerer = Answerer(generative(session_settings), retriever=retriever,
                        llm=StreamingFakeLLM(f"{NOT_FOUND_MARKER}.", piece=3))
    answer = answerer.answer(POSCOMP_QUESTION, on_partial=seen.append)
    assert answer.abstained and seen == []


def test_generative_not_found_marker_abstains(session_settings, retriever):
    answerer = Answerer(generative(session_settings), retriever=retriever, llm=FakeLLM(f"{NOT_FOUND_MARKER}."))
    answer = answerer.answer(POSCOMP_QUESTION)
    assert answer.abstained and answer.text == "" and answer.model_version == "fake-llm"


def test_build_messages_numbers_the_passages(retriever):
    hits = retriever.search("Qual a finalidade da FAPDF?", k=2)
    user = build_messages("Qual a finalidade da FAPDF?", hits)[1]["content"]
    assert user.startswith("Contexto:\n[1] ") and "\n\n[2] " in user


def test_content_terms_fold_accents_stem_and_drop_stop_words():
    assert content_terms("Qual é o prazo das inscrições?") == content_terms("prazos inscricao")


def test_real_smollm2_answer_loaded_lazily_from_settings(session_settings, sample_index, smollm2):
    settings = generative(session_settings, max_new_tokens=12, top_k=2)
    answerer = Answerer(settings)  # loads the session index and the materialised SmolLM2 by itself
    answerer.warm_up()
    assert answerer._retriever is not None and answerer._llm is smollm2
    answer = answerer.answer("Qual a finalidade da FAPDF?")
    assert answerer.llm is smollm2 and answerer.retriever.version == sample_index.version
    assert not answer.abstained and answer.text.strip()
    assert answer.sources[0].document == "FAPDF"
    # SmolLM2-135M is weak in Portuguese: its answer is kept only when grounded, else the extractive one.
    assert (answer.strategy, answer.model_version) in {("generative", "smollm2-135m-instruct"),
                                                       ("extractive", "extractive")}


def test_refresh_switches_to_a_newer_index(tmp_path, sample_chunks):
    from pipeline.search.index import build_index

    settings = Settings(DATA_DIR=tmp_path / "data")
    build_index(sample_chunks[:3], qa_records=[], embedding_model="embedded", index_root=settings.index_dir)
    answerer = Answerer(settings)
    old = answerer.retriever.version
    assert answerer.refresh() is False
    newer = build_index(sample_chunks[:4], qa_records=[], embedding_model="embedded",
                        index_root=settings.index_dir)
    assert answerer.refresh() is True and answerer.retriever.version == newer.version != old


# --- the reader (the default strategy) ----------------------------------------------------------------------

def test_reader_answer_is_a_span_quoted_in_its_sentence_from_its_one_source(session_settings, retriever,
                                                                             sample_documents):
    answer = Answerer(session_settings, retriever=retriever).answer(POSCOMP_QUESTION)
    assert answer.strategy == "reader" and not answer.abstained and answer.model_version.startswith("reader")
    assert "2006" in answer.text and len(answer.text) < 40
    [source] = answer.sources  # only the source the answer uses
    assert source.document == "POSCOMP" and answer.text in source.quote
    text = next(d.text for d in sample_documents if d.name == source.document)
    assert text[source.span[0]:source.span[1]] == answer.text  # the span points into the document


def test_reader_never_gives_a_rejected_answer_again(session_settings, retriever):
    from pipeline.feedback.memory import Rejected

    answerer = Answerer(session_settings, retriever=retriever)
    first = answerer.answer(POSCOMP_QUESTION)
    again = answerer.answer(POSCOMP_QUESTION, rejected=[Rejected(first.sources[0].chunk_id, first.text)])
    assert again.abstained or again.text != first.text
    if not again.abstained and again.sources[0].chunk_id == first.sources[0].chunk_id:
        a, b = again.sources[0].span, first.sources[0].span
        assert a[1] <= b[0] or b[1] <= a[0]  # nor one overlapping its place


def test_a_refused_closest_passage_is_not_read_again_in_the_sentence_citizens_were_shown(session_settings,
                                                                                          retriever):
    from pipeline.answering.citation import supporting_quote
    from pipeline.feedback.memory import Rejected

    answerer = Answerer(session_settings, retriever=retriever)
    hits, spans = answerer.read(POSCOMP_QUESTION)
    best, chunk = spans[0], hits[spans[0].passage].chunk
    shown = (chunk.start + best.start, chunk.start + best.end)
    quote = supporting_quote(chunk, best.start, best.end)
    _, again = answerer.read(POSCOMP_QUESTION, [Rejected(chunk.id, "", shown)])
    same_passage = [sp for sp in again if hits[sp.passage].chunk.id == chunk.id]
    assert all(sp.end <= quote.start or sp.start >= quote.end for sp in same_passage)  # nothing in that sentence
    assert len(again) >= 1 and again[0].text != best.text


def test_reader_abstains_below_its_margin_threshold(session_settings, retriever):
    strict = session_settings.model_copy(update={"reader_threshold": 1e6, "reader_abstention": "margin"})
    answer = Answerer(strict, retriever=retriever).answer(POSCOMP_QUESTION)
    assert answer.abstained and answer.sources == [] and answer.strategy == "reader"


def test_the_learned_abstention_model_decides_when_the_reader_carries_one(session_settings, retriever):
    from dataclasses import replace

    answerer = Answerer(session_settings, retriever=retriever)
    model = answerer.reader.abstention
    assert model is not None  # the shipped adapter carries its abstention model
    try:
        answerer.reader.abstention = replace(model, threshold=1e6, near=1e6)
        refused = answerer.answer(POSCOMP_QUESTION)
        assert refused.abstained and refused.closest is None and refused.sources == []
        # below the threshold but above `near`: still an abstention, with the closest passage to quote
        answerer.reader.abstention = replace(model, threshold=1e6, near=-1e6)
        close = answerer.answer(POSCOMP_QUESTION)
        assert close.abstained and close.text == "" and close.sources == []
        answerer.reader.abstention = replace(model, threshold=-1e6, confident=1e6)
        answer = answerer.answer(POSCOMP_QUESTION)
        assert not answer.abstained and not answer.confident
        assert close.closest == answer.sources[0] and close.closest.quote  # the passage it would have answered from
        answerer.reader.abstention = replace(model, threshold=-1e6, confident=-1e6)
        assert answerer.answer(POSCOMP_QUESTION).confident
        # READER_ABSTENTION=margin ignores the model: only the margin threshold decides
        margin_only = Answerer(session_settings.model_copy(update={"reader_abstention": "margin",
                                                                   "reader_threshold": -1e6}),
                               retriever=retriever, reader=answerer.reader)
        answerer.reader.abstention = replace(model, threshold=1e6)
        assert not margin_only.answer(POSCOMP_QUESTION).abstained
    finally:
        answerer.reader.abstention = model


def test_a_span_of_closed_class_words_alone_is_never_an_answer(session_settings, retriever):
    from pipeline.core.text import only_function_words
    from pipeline.answering.reader import ReadSpan

    class Reader:  # a reader whose best span is a bare preposition (seen after a nightly run: "desde")
        def read(self, question, passages, *, top, exclude=()):
            return [ReadSpan(0, 0, 5, "desde", 9.0), ReadSpan(0, 0, 9, "a partir de", 8.0),
                    ReadSpan(0, 6, 10, "2006", 5.0)]

    _, spans = Answerer(session_settings, retriever=retriever, reader=Reader()).read(POSCOMP_QUESTION)
    assert [s.text for s in spans] == ["2006"]
    assert only_function_words("") and not only_function_words("até 10 dias") and not only_function_words("Cubatão")
