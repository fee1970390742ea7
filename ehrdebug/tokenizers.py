"""Loading a tokenizer the way users have it, as one fast ``tokenizers.Tokenizer`` the probes can batch.

Accepted: a directory saved by ``save_pretrained`` (tokenizer.json, read directly with the
``tokenizers`` library), the files as they come with a model (vocab.json + merges.txt for byte-level
BPE, spiece.model / tokenizer.model for SentencePiece, vocab.txt for WordPiece, loaded through the
matching transformers class), or a hub id (``AutoTokenizer.from_pretrained``). ``AutoTokenizer`` pulls
torch in transformers 5, so local directories never go through it: ``ehrdebug check tokenizer`` on a
directory stays torch-free.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

from ehrdebug.errors import UserError

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_SPECIAL_KEYS = ("bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token", "mask_token")
# raw files -> (transformers class, family); checked in this order
_RAW_FILES: list[tuple[tuple[str, ...], str, str]] = [
    (("vocab.json", "merges.txt"), "GPT2TokenizerFast", "byte-level BPE"),
    (("spiece.model",), "T5TokenizerFast", "SentencePiece"),
    (("tokenizer.model",), "LlamaTokenizerFast", "SentencePiece"),
    (("sentencepiece.bpe.model",), "XLMRobertaTokenizerFast", "SentencePiece"),
    (("vocab.txt",), "BertTokenizerFast", "WordPiece"),
]


@dataclass
class TokenizerHandle:
    """A fast backend plus what the probes need to know about it.

    ``backend`` is a ``tokenizers.Tokenizer``: every probe batches through it. ``hf`` keeps the
    transformers object when one was built (hub ids, raw files), for shells that want it.
    """

    backend: Any
    name: str
    source: str
    family: str
    lowercases: bool
    unk_id: int | None
    unk_token: str | None
    special_tokens: dict[str, str] = field(default_factory=dict)
    tokenizer_class: str = ""
    hf: Any = None

    @property
    def vocab_size(self) -> int:
        return int(self.backend.get_vocab_size(with_added_tokens=True))

    @property
    def word_level(self) -> bool:
        """A whole-word vocabulary (EHR code tokenizers): no subword pieces, a word is one id or the unknown id."""
        return self.family == "WordLevel"

    def token_id(self, token: str) -> int | None:
        return self.backend.token_to_id(token)

    def encode_batch(self, texts: list[str], add_special_tokens: bool = True) -> list[Any]:
        return self.backend.encode_batch(texts, add_special_tokens=add_special_tokens)

    def pieces(self, text: str) -> list[str]:
        """The pieces of ``text`` with no BOS/EOS added, as the tokenizer names them."""
        return list(self.backend.encode(text, add_special_tokens=False).tokens)

    def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str:
        return str(self.backend.decode(ids, skip_special_tokens=skip_special_tokens))

    def normalize(self, text: str) -> str:
        norm = self.backend.normalizer
        return str(norm.normalize_str(text)) if norm is not None else text

    def added_tokens(self) -> dict[str, dict[str, Any]]:
        """Added tokens by content, with their settings (special, lstrip, rstrip, normalized, single_word)."""
        out: dict[str, dict[str, Any]] = {}
        for tid, tok in sorted(self.backend.get_added_tokens_decoder().items()):
            out[str(tok.content)] = {
                "id": int(tid),
                "special": bool(tok.special),
                "lstrip": bool(tok.lstrip),
                "rstrip": bool(tok.rstrip),
                "normalized": bool(tok.normalized),
                "single_word": bool(tok.single_word),
            }
        return out

    def with_added_tokens(self, tokens: list[str], special: bool = False) -> TokenizerHandle:
        """A copy with ``tokens`` added (normalised first when the tokenizer lower-cases); the original is untouched."""
        from tokenizers import AddedToken, Tokenizer

        clone = Tokenizer.from_str(self.backend.to_str())
        added = [AddedToken(self.normalize(t), single_word=True, normalized=self.lowercases, special=special) for t in tokens]
        if special:
            clone.add_special_tokens(added)
        else:
            clone.add_tokens(added)
        return TokenizerHandle(
            backend=clone, name=self.name, source=self.source, family=self.family, lowercases=self.lowercases,
            unk_id=self.unk_id, unk_token=self.unk_token, special_tokens=dict(self.special_tokens),
            tokenizer_class=self.tokenizer_class,
        )

    def describe(self) -> dict[str, Any]:
        return {
            "tokenizer": self.name,
            "loaded_from": self.source,
            "family": self.family,
            "class": self.tokenizer_class or "tokenizers.Tokenizer",
            "vocab_size": self.vocab_size,
            "lowercases": self.lowercases,
            "unk_token": self.unk_token,
            "word_level": self.word_level,
        }


def load_tokenizer(path_or_id: str) -> TokenizerHandle:
    """Load a local tokenizer directory (or file) or a hub id; user mistakes raise a one-line UserError."""
    target = os.path.expanduser(str(path_or_id))
    if os.path.isfile(target) and target.endswith(".json"):
        return _from_tokenizer_json(target, {}, target)
    if os.path.isdir(target):
        return _from_dir(target)
    if os.path.exists(target):
        raise UserError(f"expected a tokenizer directory, got a file: {path_or_id}")
    if _looks_like_path(str(path_or_id)) or not _HUB_ID.match(str(path_or_id)):
        raise UserError(f"tokenizer directory not found: {path_or_id}")
    return _from_hub(str(path_or_id))


def load_transformers_tokenizer(path_or_id: str) -> Any:
    """A transformers tokenizer for every layout ``load_tokenizer`` reads (collators, ``generate`` and model
    surgery need one): ``AutoTokenizer`` for a saved directory, the matching class for raw vocabulary files
    (lower-casing detected), a ``PreTrainedTokenizerFast`` around a bare tokenizer.json, or a hub id."""
    target = os.path.expanduser(str(path_or_id))
    if os.path.isdir(target) and "tokenizer_config.json" in os.listdir(target):
        try:
            from transformers import AutoTokenizer

            return AutoTokenizer.from_pretrained(target, local_files_only=True)
        except Exception as exc:  # noqa: BLE001 - transformers raises many types for a bad dir
            raise UserError(f"cannot load a tokenizer from {path_or_id}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}") from exc
    handle = load_tokenizer(str(path_or_id))
    if handle.hf is not None:
        return handle.hf
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_object=handle.backend, **handle.special_tokens)


def as_handle(tokenizer: Any) -> TokenizerHandle:
    """Accept a handle, a path/hub id, a transformers tokenizer or a ``tokenizers.Tokenizer``."""
    if isinstance(tokenizer, TokenizerHandle):
        return tokenizer
    if isinstance(tokenizer, (str, os.PathLike)):
        return load_tokenizer(os.fspath(tokenizer))
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        name = str(getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__)
        return _handle_from_hf(tokenizer, name, "transformers object", "")
    if hasattr(tokenizer, "encode_batch") and hasattr(tokenizer, "get_vocab_size"):
        return _handle(tokenizer, "tokenizers.Tokenizer", "in-memory", {}, "")
    raise TypeError(f"not a tokenizer: {type(tokenizer).__name__}")


def _looks_like_path(value: str) -> bool:
    return value.startswith((".", "/", "~")) or os.sep in value.strip("/").replace("/", "", 1) or "\\" in value


def _read_json(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"cannot read {path}: {str(exc).splitlines()[0]}") from exc
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object")
    return data


def _from_dir(path: str) -> TokenizerHandle:
    files = set(os.listdir(path))
    config = _read_json(os.path.join(path, "tokenizer_config.json")) if "tokenizer_config.json" in files else {}
    if "tokenizer.json" in files:
        return _from_tokenizer_json(os.path.join(path, "tokenizer.json"), config, path)
    for needed, cls_name, _family in _RAW_FILES:
        if all(n in files for n in needed):
            return _from_raw(path, needed, cls_name, config)
    raise UserError(
        f"no tokenizer in {path} (expected tokenizer.json, vocab.json+merges.txt, spiece.model, tokenizer.model or vocab.txt)"
    )


def _from_tokenizer_json(file: str, config: dict[str, Any], name: str) -> TokenizerHandle:
    from tokenizers import Tokenizer

    try:
        backend = Tokenizer.from_file(file)
    except Exception as exc:  # noqa: BLE001 - the Rust side raises plain Exception for bad files
        raise UserError(f"{file}: not a readable tokenizer.json ({str(exc).splitlines()[0][:160]})") from exc
    specials = {k: _content(config.get(k)) for k in _SPECIAL_KEYS if _content(config.get(k))}
    return _handle(backend, name, "tokenizer.json", specials, str(config.get("tokenizer_class", "")))


def _content(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("content", ""))
    return value if isinstance(value, str) else ""


def _from_raw(path: str, needed: tuple[str, ...], default_cls: str, config: dict[str, Any]) -> TokenizerHandle:
    import transformers

    cls_name = str(config.get("tokenizer_class") or default_cls)
    cls = getattr(transformers, cls_name, None) if cls_name.endswith(("Tokenizer", "TokenizerFast")) else None
    if cls is None:
        cls = getattr(transformers, default_cls)
    kwargs: dict[str, Any] = {}
    if "vocab.txt" in needed and "do_lower_case" not in config:
        kwargs["do_lower_case"] = not _vocab_is_cased(os.path.join(path, "vocab.txt"))
    try:
        tok = cls.from_pretrained(path, local_files_only=True, **kwargs)
    except Exception as exc:  # noqa: BLE001 - transformers raises many types for a bad file
        raise UserError(f"cannot load tokenizer from {path} ({'+'.join(needed)}): {str(exc).splitlines()[0][:200]}") from exc
    source = "+".join(needed) + (f" (do_lower_case={kwargs['do_lower_case']} from the vocabulary)" if kwargs else "")
    return _handle_from_hf(tok, path, source, type(tok).__name__)


def _vocab_is_cased(vocab_file: str) -> bool:
    """A WordPiece vocabulary with upper-case word pieces was trained cased (bert-base-cased has ~8k, uncased ~0)."""
    upper = words = 0
    with open(vocab_file, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            word = line.rstrip("\n")
            if word.startswith("[") and word.endswith("]"):
                continue
            if any(c.isalpha() for c in word):
                words += 1
                upper += any(c.isupper() for c in word)
    return words > 0 and upper / words > 0.01


def _from_hub(repo_id: str) -> TokenizerHandle:
    try:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(repo_id)
    except Exception as exc:  # noqa: BLE001 - offline, missing repo, network: all one line for the user
        offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
        why = "HF_HUB_OFFLINE is set and it is not in the local cache" if offline else str(exc).splitlines()[0][:200]
        raise UserError(f"no tokenizer directory {repo_id!r} and the hub id could not be loaded: {why}") from exc
    if getattr(tok, "backend_tokenizer", None) is None:
        raise UserError(f"{repo_id}: has no fast (tokenizers) backend; save it with tokenizer.json")
    return _handle_from_hf(tok, repo_id, "hub (AutoTokenizer)", type(tok).__name__)


def _handle_from_hf(tok: Any, name: str, source: str, cls_name: str) -> TokenizerHandle:
    specials = {k: str(getattr(tok, k)) for k in _SPECIAL_KEYS if getattr(tok, k, None)}
    handle = _handle(tok.backend_tokenizer, name, source, specials, cls_name or type(tok).__name__)
    handle.hf = tok
    return handle


def _handle(backend: Any, name: str, source: str, specials: dict[str, str], cls_name: str) -> TokenizerHandle:
    unk_id, unk_token = _unknown(backend)
    lowercases = False
    if backend.normalizer is not None:
        probe = "ABC Xyz V3001"
        lowercases = backend.normalizer.normalize_str(probe) == probe.lower()
    return TokenizerHandle(
        backend=backend, name=name, source=source, family=_family(backend), lowercases=lowercases,
        unk_id=unk_id, unk_token=unk_token, special_tokens=specials, tokenizer_class=cls_name,
    )


def _family(backend: Any) -> str:
    model = type(backend.model).__name__
    pre = repr(backend.pre_tokenizer) if backend.pre_tokenizer is not None else ""
    if model == "BPE" and "ByteLevel" in pre:
        return "byte-level BPE"
    if "Metaspace" in pre or (model == "BPE" and getattr(backend.model, "byte_fallback", False)):
        return f"SentencePiece ({model})"
    if model == "WordPiece":
        return "WordPiece"
    return model


def _unknown(backend: Any) -> tuple[int | None, str | None]:
    """The id the model emits for text it cannot represent (None for byte-level BPE, which has none)."""
    model = backend.model
    name = type(model).__name__
    if name == "Unigram":
        unk = json.loads(backend.to_str()).get("model", {}).get("unk_id")
        if unk is None:
            return None, None
        return int(unk), backend.id_to_token(int(unk))
    token = getattr(model, "unk_token", None)
    if not token:
        return None, None
    tid = backend.token_to_id(token)
    return (int(tid), str(token)) if tid is not None else (None, None)
