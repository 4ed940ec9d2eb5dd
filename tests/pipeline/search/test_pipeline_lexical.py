"""Portuguese BM25: tokenisation (stemming, accent folding, stop words) and normalised scores."""

from __future__ import annotations

import numpy as np

from pipeline.core.text import fold
from pipeline.search.lexical import LexicalIndex, tokenize

TEXTS = [
    "As inscrições para o processo seletivo começam em março.",
    "O restaurante universitário abre às 11h e fecha às 14h.",
    "A bolsa de monitoria tem valor mensal de R$ 400,00.",
]


def test_tokenize_stems_folds_accents_and_drops_stop_words():
    assert fold("Inscrição É ÁGUA") == "inscricao e agua"
    assert tokenize("Quais são as inscrições?") == tokenize("inscricoes") == tokenize("Inscrição") != []
    assert tokenize("o que é a de para com") == []
    assert tokenize("Art. 5º do edital nº 12") == ["art", "5", "edital", "12"]


def test_scores_are_normalised_and_rank_the_matching_text_first():
    index = LexicalIndex.build(TEXTS)
    rows, scores = index.top("Quando começam as inscricoes do processo seletivo?", 3)
    assert rows[0] == 0 and 0 < scores[0] <= 1
    assert list(scores) == sorted(scores, reverse=True)
    assert index.scores("xylofone zumbido").max() == 0  # words no text uses: nothing found
    full = index.scores("bolsa monitoria valor mensal")[2]
    partial = index.scores("bolsa monitoria valor mensal restaurante")[2]
    assert 0 < partial < full <= 1  # an unmatched query word lowers the absolute score


def test_overlap_is_one_for_the_same_words_and_symmetric(tmp_path):
    index = LexicalIndex.build(TEXTS)
    same, partial, none = index.overlap("Qual o valor da bolsa de monitoria?",
                                        [tokenize("valor da bolsa de monitoria"), tokenize("bolsa"), []])
    assert abs(same - 1.0) < 1e-6 and 0 < partial < 1 and none == 0
    index.save(tmp_path / "lex")
    again = LexicalIndex.load(tmp_path / "lex")
    np.testing.assert_allclose(again.scores("restaurante universitário"), index.scores("restaurante universitário"))


def test_saved_tokens_let_a_rebuild_skip_unchanged_texts_with_identical_scores(tmp_path, monkeypatch):
    import pipeline.search.lexical as lexical

    first = LexicalIndex.build(TEXTS + [""])
    first.save(tmp_path / "lex")
    known = LexicalIndex.saved_tokens(tmp_path / "lex", TEXTS + [""])
    assert known.tokens(TEXTS[0]) == tokenize(TEXTS[0]) and known.tokens("") == ["_empty_"]
    assert known.tokens("nunca indexado") is None
    assert LexicalIndex.saved_tokens(tmp_path / "lex", TEXTS) is None  # rows that do not match: nothing reused

    edited = [TEXTS[0], "A bolsa de extensão tem valor mensal de R$ 700,00.", TEXTS[1]]
    tokenized = []
    real_tokenize = lexical.tokenize
    monkeypatch.setattr(lexical, "tokenize", lambda text: tokenized.append(text) or real_tokenize(text))
    rebuilt = LexicalIndex.build(edited, known_tokens=known)
    assert tokenized == [edited[1]]  # only the new text was stemmed
    monkeypatch.setattr(lexical, "tokenize", real_tokenize)
    scratch = LexicalIndex.build(edited)
    for query in ("valor mensal da bolsa", "restaurante universitário", "inscrições em março"):
        np.testing.assert_array_equal(rebuilt.scores(query), scratch.scores(query))
    assert len(rebuilt._vocab) == len(scratch._vocab)  # the words of the replaced text are gone


def test_vectorised_build_gives_bm25s_own_scores():
    import bm25s

    texts = TEXTS * 3 + ["Inscrições de monitoria: inscrições abertas, inscrições até março.", ""]
    ours = LexicalIndex.build(texts)
    reference = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
    reference.index([tokenize(t) or ["_empty_"] for t in texts], show_progress=False)
    for query in ("inscrições monitoria", "valor mensal da bolsa", "restaurante 11h março"):
        words = tokenize(query)
        mine = ours._bm25.get_scores_from_ids([ours._vocab[w] for w in words])
        theirs = reference.get_scores_from_ids([reference.vocab_dict[w] for w in words])
        np.testing.assert_array_equal(mine, theirs)
        assert mine.max() > 0


def test_words_typed_without_accents_give_the_same_tokens():
    from pipeline.search.lexical import tokenize

    accented = "responsável experiência matrícula inscrições informação disponível incluído possuía através"
    assert tokenize(accented) == tokenize(fold(accented))
    assert tokenize("Inscrição") == tokenize("inscricoes") == tokenize("INSCRIÇÕES")
