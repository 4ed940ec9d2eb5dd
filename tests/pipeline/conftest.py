"""Session-scoped pipeline fixtures: real models and a real index, each built once per test session.

Everything lives in one session data folder laid out like ``Settings(DATA_DIR=...)`` expects
(``index/``, ``data_qa/``, ``models/``), so tests can also exercise the lazy loading from settings.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.documents.chunking import chunk_document
from pipeline.documents.load import load_documents
from pipeline.search.index import build_index
from pipeline.qa.generate import generate_qa
from pipeline.qa.records import load_qa_records
from pipeline.settings import Settings


@pytest.fixture(scope="session")
def session_data_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("pipeline_data")


@pytest.fixture(scope="session")
def session_settings(session_data_dir) -> Settings:
    """Settings whose index/qa/models folders are the session ones (extractive, embedded models)."""
    return Settings(DATA_DIR=session_data_dir)


@pytest.fixture(scope="session")
def sample_documents():
    return load_documents(None)


@pytest.fixture(scope="session")
def sample_chunks(sample_documents):
    return [chunk for doc in sample_documents for chunk in chunk_document(doc)]


@pytest.fixture(scope="session")
def sample_qa_records(sample_documents, session_settings):
    generate_qa(sample_documents, out_dir=session_settings.qa_dir, generator="offline")
    return load_qa_records(session_settings.qa_dir)


@pytest.fixture(scope="session")
def sample_index(sample_chunks, sample_qa_records, session_settings):
    """The sample corpus indexed with the embedded e5-small: ``IndexInfo``."""
    return build_index(sample_chunks, qa_records=sample_qa_records, embedding_model="embedded",
                       index_root=session_settings.index_dir)


@pytest.fixture(scope="session")
def retriever(sample_index, session_settings):
    from pipeline.search.retrieve import Retriever

    return Retriever.load(session_settings.index_dir, embedding_model="embedded")


@pytest.fixture(scope="session")
def tiny_llm_dir(tmp_path_factory) -> Path:
    """A randomly initialised 2-layer Llama with a real tokenizer (MiniLM's WordPiece), saved as a checkpoint."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from pipeline.search.embeddings import resolve_embedding_model

    folder = tmp_path_factory.mktemp("models") / "tiny-llama"
    tokenizer = AutoTokenizer.from_pretrained(resolve_embedding_model("minilm"))
    tokenizer.chat_template = ("{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"
                               "{% if add_generation_prompt %}[assistant]{% endif %}")
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                         bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def smollm2(session_settings):
    """The real embedded SmolLM2-135M-Instruct, materialised from its GGUF once into the session models dir."""
    from pipeline.llm.local import LocalLLM

    return LocalLLM.load("embedded", models_dir=session_settings.models_dir)
