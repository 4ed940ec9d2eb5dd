"""The answer engine's side of a promotion: which adapter it answers with, and how a new one gets there.

With ``LLM_BACKEND=openai`` the generative model runs on an engine (vLLM, llama.cpp's server...), not in the bot.
After the nightly job promotes an LLM adapter, :func:`publish_adapter` hands it to that engine
(``ENGINE_PUBLISH``):

- ``vllm``: ``POST /v1/load_lora_adapter {"lora_name", "lora_path"}`` (vLLM started with ``--enable-lora`` and
  ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``), then the pointer ``DATA_DIR/models/ENGINE_ADAPTER`` names it, then
  ``POST /v1/unload_lora_adapter {"lora_name"}`` frees the previous one;
- ``command``: ``ENGINE_PUBLISH_COMMAND <adapter folder> <name>`` (e.g. convert to GGUF with llama.cpp's
  ``convert_lora_to_gguf.py`` and restart ``llama-server --lora``); exit status 0 = published.

The pointer moves only after the engine accepted the adapter, and the old adapter is unloaded only after the
pointer moved: a failed publication leaves the previous adapter loaded and named, so the bots keep answering
with it (and the job tells the admins). Bots read the pointer through the same hot reload as the other serving
pointers (:func:`pipeline.serving.versions.serving_stamp`): the next question after a publication uses the new name.

Example::

    from pipeline.serving.engine import publish_adapter
    from pipeline.serving.versions import served_model
    publish_adapter(settings, Path("data/models/adapters/20261202T030000Z"))   # EngineError when refused
    served_model(settings)                                                     # 'oraculo-20261202T030000Z'
"""

from __future__ import annotations

import json
import logging
import shlex
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

from pipeline.core.files import atomic_write_text
from pipeline.serving.versions import answer_base_url, engine_pointer, published_adapter
from pipeline.settings import Settings

log = logging.getLogger(__name__)

NAME_PREFIX = "oraculo-"


class EngineError(RuntimeError):
    """The engine refused or could not be reached: the previous adapter keeps serving."""


def _engine_root(settings: Settings) -> str:
    """The engine's base URL without ``/v1`` (its adapter routes sit beside the OpenAI ones)."""
    url = (settings.engine_url or answer_base_url(settings) or "").rstrip("/")
    if not url:
        raise EngineError("ENGINE_PUBLISH=vllm needs ENGINE_URL or OPENAI_ANSWER_BASE_URL/OPENAI_BASE_URL")
    return url[:-3] if url.endswith("/v1") else url


def adapter_name(adapter_dir: Path) -> str:
    return NAME_PREFIX + Path(adapter_dir).name


def engine_path(settings: Settings, adapter_dir: Path) -> str:
    """Where the engine finds the adapter folder (ENGINE_ADAPTERS_DIR maps DATA_DIR/models/adapters)."""
    if settings.engine_adapters_dir:
        return f"{settings.engine_adapters_dir.rstrip('/')}/{Path(adapter_dir).name}"
    return str(Path(adapter_dir).resolve())


class VLLMAdapters:
    """vLLM's runtime LoRA routes. Success is a 200 with a text body; errors are JSON with a message."""

    def __init__(self, settings: Settings) -> None:
        self.root = _engine_root(settings)
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.timeout = settings.engine_timeout_s

    def _post(self, route: str, body: dict) -> tuple[int, str]:
        import httpx

        try:
            response = httpx.post(f"{self.root}{route}", json=body, headers=self.headers, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise EngineError(f"{route}: {type(exc).__name__}") from exc
        return response.status_code, _message(response.text)

    def load(self, name: str, path: str) -> None:
        status, message = self._post("/v1/load_lora_adapter", {"lora_name": name, "lora_path": path})
        if status == 200:
            return
        if status == 400 and "already been loaded" in message:  # a rerun after the pointer write failed
            log.info("engine already holds adapter %s", name)
            return
        if status == 404 and not message:
            raise EngineError("load_lora_adapter: 404 (is VLLM_ALLOW_RUNTIME_LORA_UPDATING=True set on vLLM?)")
        raise EngineError(f"load_lora_adapter: {status} {message}"[:500])

    def unload(self, name: str) -> None:
        status, message = self._post("/v1/unload_lora_adapter", {"lora_name": name})
        if status != 200 and not (status == 404 and "cannot be found" in message):  # already gone: fine
            raise EngineError(f"unload_lora_adapter: {status} {message}"[:500])


def _message(text: str) -> str:
    """The error message of a vLLM JSON error body (either layout), else the text itself."""
    try:
        body = json.loads(text)
    except ValueError:
        return text.strip()[:300]
    if isinstance(body, dict):
        inner = body.get("error") if isinstance(body.get("error"), dict) else body
        return str(inner.get("message") or "")[:300]
    return ""


def _run_command(settings: Settings, adapter_dir: Path, name: str) -> None:
    if not settings.engine_publish_command.strip():
        raise EngineError("ENGINE_PUBLISH=command needs ENGINE_PUBLISH_COMMAND")
    args = shlex.split(settings.engine_publish_command) + [engine_path(settings, adapter_dir), name]
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=settings.engine_timeout_s)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EngineError(f"publish command: {type(exc).__name__}: {exc}"[:500]) from exc
    if done.returncode != 0:
        tail = [line for line in (done.stderr or done.stdout or "").splitlines() if line.strip()]
        raise EngineError(f"publish command exited with {done.returncode}: {tail[-1][:300] if tail else ''}")


def _write_pointer(settings: Settings, record: dict) -> None:
    atomic_write_text(engine_pointer(settings), json.dumps(record, ensure_ascii=False) + "\n")


def publish_adapter(settings: Settings, adapter_dir: Path) -> dict:
    """Make the engine answer with ``adapter_dir``; :class:`EngineError` (nothing changed) when it refuses."""
    started = time.perf_counter()
    adapter_dir = Path(adapter_dir)
    name = adapter_name(adapter_dir)
    previous = published_adapter(settings)
    if settings.engine_publish == "vllm":
        engine = VLLMAdapters(settings)
        engine.load(name, engine_path(settings, adapter_dir))
    elif settings.engine_publish == "command":
        engine = None
        _run_command(settings, adapter_dir, name)
    else:
        raise EngineError("ENGINE_PUBLISH is 'none'")
    _write_pointer(settings, {"name": name, "adapter": adapter_dir.name, "engine": settings.engine_publish,
                              "at": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    result = {"engine": settings.engine_publish, "name": name, "previous": previous["name"] if previous else None}
    if engine is not None and previous and previous["name"] != name:
        try:
            engine.unload(previous["name"])
            result["unloaded"] = previous["name"]
        except EngineError as exc:  # the new adapter serves; the old one only takes memory on the engine
            log.warning("published %s but could not unload %s: %s", name, previous["name"], exc)
            result["unload_error"] = str(exc)
    result["seconds"] = round(time.perf_counter() - started, 2)
    log.info("engine publication: %s", result)
    return result
