"""Optional cross-encoder reranking, with a tiny randomly initialised cross-encoder built from a config."""

from __future__ import annotations

import dataclasses

import pytest


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory):
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from pipeline.search.embeddings import resolve_embedding_model

    folder = tmp_path_factory.mktemp("models") / "tiny-cross-encoder"
    tokenizer = AutoTokenizer.from_pretrained(resolve_embedding_model("embedded"))
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, num_labels=1)
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def test_reranker_reorders_the_fused_candidates(retriever, tiny_cross_encoder):
    from pipeline.search.rerank import load_reranker, rerank_scores

    question = "Qual é o prazo para renovar a matrícula?"
    plain = retriever.search(question, k=5)
    original = retriever.options
    try:
        retriever.options = dataclasses.replace(original, reranker_model=tiny_cross_encoder, rerank_depth=8)
        reranked = retriever.search(question, k=5)
    finally:
        retriever.options = original
        retriever._reranker = None
    assert len(reranked) == 5 and all(h.rerank is not None for h in reranked)
    assert [h.rerank for h in reranked] == sorted((h.rerank for h in reranked), reverse=True)
    assert all(h.rerank is None for h in plain)
    model = load_reranker(tiny_cross_encoder)
    assert load_reranker(tiny_cross_encoder) is model  # loaded once
    scores = rerank_scores(model, question, [h.chunk.text for h in reranked])
    assert len(scores) == 5 and rerank_scores(model, question, []) == []
