"""Evaluate answers end to end on a SQuAD v1.1 file: fresh index, the real answer path, F1/EM/abstention/latency.

``evaluate_answers`` builds a new index over the corpus paragraphs (one chunk per paragraph, no generated
questions) in a temporary folder, answers every question through :class:`pipeline.answering.answer.Answerer` exactly as
the bot does, and scores the answers with SQuAD's token F1 and exact match (best over the gold answers, accents
kept). An abstention scores 0. ``off_topic=N`` mixes in the first N questions of ``OFF_TOPIC_QUESTIONS``
(questions no public-document corpus of this kind answers) and reports the share of them refused.

``unanswerable=U.json`` (a JSON list of questions the corpus does not answer) adds ``unanswerable_refused``, the
share of them refused. Corpus paragraphs longer than a chunk are chunked exactly as ``oraculo index`` does.

``split="train" | "heldout"`` keeps only the questions of one part of the articles (by title, see
``article_split``): the extractor and the abstention thresholds were tuned on ``train``; report ``heldout``.

Example::

    oraculo eval answers --squad ../shared/data/faquad/train.json --off-topic 40 --json
    # or, from Python:
    >>> from pipeline.settings import Settings
    >>> from pipeline.evaluation.answers import evaluate_answers
    >>> evaluate_answers(Settings(), squad="train.json", corpus=None, off_topic=40)   # doctest: +SKIP
    {'f1': 0.68, 'exact_match': 0.4, 'abstain_rate': 0.03, 'p50_ms': 25.0, 'p95_ms': 60.0, ...}
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from pipeline.answering.answer import Answerer
from pipeline.core.text import exact_match, normalize_answer, token_f1
from pipeline.documents.chunking import Chunk, chunk_document
from pipeline.documents.text import Document
from pipeline.evaluation.squad import SquadCorpus, load_squad
from pipeline.search.index import build_index
from pipeline.search.retrieve import Retriever
from pipeline.settings import Settings

# Questions a corpus of Brazilian public documents about a university does not answer: everyday life, other
# domains, other countries, chit-chat. Fixed and varied on purpose; the first half (even positions) was used
# to calibrate abstention, the odd positions were not.
OFF_TOPIC_QUESTIONS = (
    "Qual a receita de bolo de cenoura com cobertura de chocolate?",
    "Quem ganhou a Copa do Mundo de futebol de 2002?",
    "Como faço para trocar o óleo do motor do meu carro?",
    "Qual é a capital da Austrália?",
    "Vai chover amanhã em Porto Alegre?",
    "Quantas calorias tem uma banana?",
    "Qual o melhor remédio para dor de cabeça?",
    "Como plantar tomate em vaso na varanda?",
    "Quem escreveu Dom Casmurro?",
    "Qual é a cotação do dólar hoje?",
    "Como declarar imposto de renda de aluguel recebido?",
    "Qual a distância da Terra até a Lua?",
    "Como faço para tirar mancha de vinho do sofá?",
    "Qual é o horário do jogo do Flamengo no domingo?",
    "Quanto tempo devo cozinhar um ovo para ficar mole?",
    "Qual o nome do cachorro do presidente?",
    "Como renovar a carteira de motorista vencida?",
    "Quais são os sintomas da dengue?",
    "Onde fica a praia mais bonita do Nordeste?",
    "Como emitir a segunda via da conta de luz?",
    "Qual é a raça de gato que solta menos pelo?",
    "Quem pintou a Mona Lisa?",
    "Como se joga xadrez?",
    "Qual é o valor do salário mínimo na Argentina?",
    "Que horas abre a padaria da esquina?",
    "Como consertar uma torneira pingando?",
    "Qual a melhor época para visitar Gramado?",
    "Quantos jogadores tem um time de vôlei?",
    "Como fazer pão de queijo mineiro?",
    "Qual é a altura do Monte Everest?",
    "Onde comprar passagem de ônibus para Salvador?",
    "Qual o significado do sonho com cobra?",
    "Como cuidar de uma orquídea?",
    "Qual foi o placar da final do campeonato paulista?",
    "Quanto custa um quilo de picanha no açougue?",
    "Como aumentar a bateria do celular?",
    "Quem é o vocalista da banda Legião Urbana?",
    "Qual é o maior rio do mundo em volume de água?",
    "Como tratar a tosse de uma criança pequena?",
    "Qual filme ganhou o Oscar de melhor filme em 1998?",
    "Como fazer feijoada para dez pessoas?",
    "Qual é a velocidade máxima de um guepardo?",
    "Quais os ingredientes de uma caipirinha?",
    "Como limpar a tela do notebook sem estragar?",
    "Onde assistir à novela das nove?",
    "Qual a temperatura ideal da geladeira?",
    "Como se chama o satélite natural de Marte?",
    "Quantos ossos tem o corpo humano?",
    "Como pedir pizza pelo aplicativo?",
    "Qual a melhor ração para cachorro filhote?",
    "Quem descobriu o Brasil?",
    "Como passar roupa sem ferro?",
    "Qual o preço da gasolina em Curitiba?",
    "Como se faz brigadeiro de panela?",
    "Qual é o idioma oficial do Japão?",
    "Onde fica a Torre Eiffel?",
    "Como adestrar um papagaio a falar?",
    "Quanto pesa um elefante africano adulto?",
    "Qual a letra do hino do Corinthians?",
    "Como trocar o pneu furado da bicicleta?",
)


def article_split(title: str) -> str:
    """``"heldout"`` for about a third of the articles (stable hash of the title), ``"train"`` for the rest."""
    return "heldout" if int(hashlib.md5(title.encode("utf-8")).hexdigest(), 16) % 3 == 0 else "train"


CHUNK_CHARS = 900  # what ``oraculo index`` uses (pipeline.documents.chunking.chunk_document's default)


def paragraph_chunks(corpus: SquadCorpus):
    """One chunk per corpus paragraph (document = article title; id ``squad:<n>``); a paragraph longer than a
    chunk — a whole document given as one paragraph — is chunked exactly as ``oraculo index`` chunks a
    document (ids ``squad:<n>:<start>-<end>``)."""
    chunks = []
    for i, (text, title) in enumerate(zip(corpus.paragraphs, corpus.titles)):
        name = title or "squad"
        if len(text) <= CHUNK_CHARS:
            chunks.append(Chunk(id=f"squad:{i}", document=name, title=name, text=text, start=0, end=len(text)))
            continue
        doc = Document(name=f"squad:{i}", title=name, text=text, path=Path(f"squad-{i}.txt"), sha256="")
        chunks += [replace(c, document=name, title=name) for c in chunk_document(doc, max_chars=CHUNK_CHARS)]
    return chunks


def build_squad_retriever(settings: Settings, corpus: SquadCorpus, index_root: Path):
    """A fresh index over the corpus paragraphs under ``index_root``, loaded for search."""
    build_index(paragraph_chunks(corpus), qa_records=[], embedding_model=settings.embedding_model,
                index_root=index_root)
    return Retriever.load(index_root, embedding_model=settings.embedding_model)


def score_answers(answerer, questions: list[tuple[str, tuple[str, ...]]], off_topic: list[str],
                  unanswerable: list[str] | None = None) -> dict:
    """Answer every question through ``answerer``; the metrics dict (see module docstring)."""
    f1s, ems, latencies, abstained = [], [], [], 0
    closest: dict[str, list] = {"answerable": [], "off_topic": [], "unanswerable": []}  # abstentions with a quote
    holds = []  # ...whose quoted closest passage holds a gold answer
    for question, golds in questions:
        started = time.perf_counter()
        answer = answerer.answer(question)
        latencies.append((time.perf_counter() - started) * 1000)
        abstained += answer.abstained
        text = "" if answer.abstained else answer.text
        f1s.append(token_f1(text, golds) if text else 0.0)
        ems.append(exact_match(text, golds) if text else 0.0)
        near = getattr(answer, "closest", None) if answer.abstained else None
        closest["answerable"].append(near is not None)
        if near is not None:
            holds.append(any(normalize_answer(g) in normalize_answer(near.quote) for g in golds))
    refused = 0
    for question in off_topic:
        started = time.perf_counter()
        answer = answerer.answer(question)
        refused += answer.abstained
        closest["off_topic"].append(answer.abstained and getattr(answer, "closest", None) is not None)
        latencies.append((time.perf_counter() - started) * 1000)
    refused_unanswerable = 0
    for question in unanswerable or []:
        started = time.perf_counter()
        answer = answerer.answer(question)
        refused_unanswerable += answer.abstained
        closest["unanswerable"].append(answer.abstained and getattr(answer, "closest", None) is not None)
        latencies.append((time.perf_counter() - started) * 1000)
    n = max(len(questions), 1)
    report = {"f1": round(float(np.mean(f1s)) if f1s else 0.0, 4),
              "exact_match": round(float(np.mean(ems)) if ems else 0.0, 4),
              "abstain_rate": round(abstained / n, 4),
              "p50_ms": round(float(np.percentile(latencies, 50)), 1) if latencies else 0.0,
              "p95_ms": round(float(np.percentile(latencies, 95)), 1) if latencies else 0.0,
              "n_queries": len(questions)}
    if off_topic:
        report["abstain_precision"] = round(refused / len(off_topic), 4)
        report["n_off_topic"] = len(off_topic)
    if unanswerable:
        report["unanswerable_refused"] = round(refused_unanswerable / len(unanswerable), 4)
        report["n_unanswerable"] = len(unanswerable)
    if any(any(v) for v in closest.values()):  # abstentions that quoted the closest passage (Answer.closest)
        report["closest_shown"] = {k: round(float(np.mean(v)), 4) for k, v in closest.items() if v}
        report["closest_holds_answer"] = round(float(np.mean(holds)), 4)
    return report


def load_unanswerable(path: Path) -> list[str]:
    """A JSON list of questions (strings) the corpus does not answer; ValueError on anything else."""
    import json

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read a JSON list of questions ({exc})") from None
    if not isinstance(data, list) or not all(isinstance(q, str) for q in data):
        raise ValueError(f"{path}: expected a JSON list of question strings")
    questions = [" ".join(q.split()) for q in data if q.strip()]
    if not questions:
        raise ValueError(f"{path}: no question in the list")
    return questions


def evaluate_answers(settings: Settings, *, squad, corpus=None, off_topic: int = 0, split: str | None = None,
                     answerer_factory=None, unanswerable: Path | list[str] | None = None) -> dict:
    """Metrics of the configured answer strategy on ``squad`` (see module docstring); ValueError on bad input."""
    if off_topic < 0 or off_topic > len(OFF_TOPIC_QUESTIONS):
        raise ValueError(f"--off-topic must be between 0 and {len(OFF_TOPIC_QUESTIONS)}")
    unanswerable_questions = (load_unanswerable(unanswerable) if isinstance(unanswerable, (str, Path))
                              else list(unanswerable or []))
    data = load_squad(Path(squad), Path(corpus) if corpus else None)
    questions = [(q.question, q.answers) for q in data.questions
                 if q.answers and (split is None or article_split(q.title) == split)]
    if not questions:
        raise ValueError(f"{squad}: no question with a gold answer")
    with tempfile.TemporaryDirectory(prefix="oraculo-eval-") as tmp:
        retriever = build_squad_retriever(settings, data, Path(tmp) / "index")
        answerer = (answerer_factory or (lambda s, r: Answerer(s, retriever=r)))(settings, retriever)
        answerer.warm_up()
        report = score_answers(answerer, questions, list(OFF_TOPIC_QUESTIONS[:off_topic]), unanswerable_questions)
    report["strategy"] = settings.answer_strategy
    report["index_version"] = retriever.version
    return report
