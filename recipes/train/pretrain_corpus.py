"""General-English text that is on every machine, and tokenizers trained on it, for the offline bases.

Why: failures such as "the pretrained EOS dominates" or "new embeddings cannot compete with trained
ones" only appear when the base has a real prior. We cannot download one, so we build a small one from
the docstrings of Python's standard library (several MB of English prose) — never from the EHR data.
"""

from __future__ import annotations

import ast
import re
import sysconfig
from pathlib import Path

_SKIP_DIRS = {"test", "tests", "site-packages", "dist-packages", "idlelib", "lib2to3", "__pycache__", "turtledemo"}
_WS = re.compile(r"\s+")


def _docstrings(tree: ast.AST) -> list[str]:
    nodes = [tree] + [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    out = []
    for node in nodes:
        doc = ast.get_docstring(node, clean=True)  # type: ignore[arg-type]
        if doc:
            out.append(doc)
    return out


def stdlib_paragraphs(max_chars: int | None = None, min_chars: int = 40) -> list[str]:
    """Paragraphs of the standard library's docstrings, in a deterministic order (sorted paths)."""
    root = Path(sysconfig.get_paths()["stdlib"])
    paragraphs: list[str] = []
    seen: set[str] = set()
    total = 0
    for path in sorted(root.rglob("*.py")):
        if _SKIP_DIRS & set(path.relative_to(root).parts[:-1]):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError, OSError):
            continue
        for doc in _docstrings(tree):
            for block in doc.split("\n\n"):
                text = _WS.sub(" ", block).strip()
                if len(text) < min_chars or text in seen or text.startswith((">>>", "..")):
                    continue
                seen.add(text)
                paragraphs.append(text)
                total += len(text)
                if max_chars is not None and total >= max_chars:
                    return paragraphs
    return paragraphs


def train_bpe_tokenizer(paragraphs: list[str], vocab_size: int, out_dir: Path):
    """Byte-level BPE like BART/GPT-2: ids <s>=0 <pad>=1 </s>=2 <unk>=3 <mask>=4, no prefix space."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaTokenizer

    bpe = ByteLevelBPETokenizer(add_prefix_space=False)
    bpe.train_from_iterator(
        paragraphs,
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
        show_progress=False,
    )
    model = bpe._tokenizer.model  # a tokenizers.models.BPE
    vocab = bpe.get_vocab()
    import json
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        model.save(tmp)
        merges = [
            tuple(line.rstrip("\n").split(" "))
            for line in Path(tmp, "merges.txt").read_text(encoding="utf-8").splitlines()
            if line and not line.startswith("#version")
        ]
    tok = RobertaTokenizer(vocab=vocab, merges=merges, add_prefix_space=False, model_max_length=512)
    assert (tok.bos_token_id, tok.pad_token_id, tok.eos_token_id) == (0, 1, 2), json.dumps(
        [tok.bos_token_id, tok.pad_token_id, tok.eos_token_id]
    )
    tok.save_pretrained(out_dir)
    return tok


def train_unigram_tokenizer(paragraphs: list[str], vocab_size: int, out_dir: Path, extra_ids: int = 100):
    """SentencePiece-style Unigram like T5's: <pad>=0 </s>=1 <unk>=2, then pieces, then <extra_id_*>."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import T5Tokenizer

    uni = Tokenizer(models.Unigram())
    uni.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")]
    )
    uni.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size,
        special_tokens=["<pad>", "</s>", "<unk>"],
        unk_token="<unk>",
        show_progress=False,
    )
    uni.train_from_iterator(paragraphs, trainer=trainer)
    import json

    pieces = json.loads(uni.to_str())["model"]["vocab"]  # [[piece, score], ...] with specials first
    vocab = [(p, float(s)) for p, s in pieces]
    vocab += [(f"<extra_id_{i}>", 0.0) for i in range(extra_ids - 1, -1, -1)]
    tok = T5Tokenizer(vocab=vocab, extra_ids=extra_ids, model_max_length=512)
    assert (tok.pad_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2)
    tok.save_pretrained(out_dir)
    return tok
