"""Loading tokenizers as users have them; no torch on the `check tokenizer` path; one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ehrdebug.errors import UserError
from ehrdebug.tokenizers import as_handle, load_tokenizer

TINY = Path(__file__).parent / "fixtures" / "tok" / "tiny_bpe"
FIXTURE = Path(__file__).parent / "fixtures" / "tok" / "seq2seq_train.txt"


def test_tokenizer_json_dir_loads_without_transformers() -> None:
    tok = load_tokenizer(str(TINY))
    assert tok.source == "tokenizer.json" and tok.family == "byte-level BPE"
    assert tok.unk_id is None and not tok.lowercases
    assert tok.pieces("<demo>") == ["<", "de", "m", "o", ">"]


@pytest.mark.parametrize(
    ("name", "family", "lowercases", "unk"),
    [
        ("gpt2_bpe", "byte-level BPE", False, None),
        ("t5_spiece", "SentencePiece (Unigram)", False, "<unk>"),
        ("llama2", "SentencePiece (BPE)", False, None),
        ("bert_base_uncased", "WordPiece", True, "[UNK]"),
        ("bert_base_cased", "WordPiece", False, "[UNK]"),
    ],
)
def test_raw_files_load(real_tokenizers: Path, name: str, family: str, lowercases: bool, unk: str | None) -> None:
    tok = load_tokenizer(str(real_tokenizers / name))
    assert (tok.family, tok.lowercases, tok.unk_token) == (family, lowercases, unk)
    assert tok.hf is not None and tok.vocab_size > 28_000


def test_saved_dir_roundtrips_settings(real_tokenizers: Path, tmp_path: Path) -> None:
    from transformers import BertTokenizerFast

    hf = BertTokenizerFast.from_pretrained(str(real_tokenizers / "bert_base_cased"), do_lower_case=False)
    hf.add_tokens(["<demo>"])
    hf.save_pretrained(str(tmp_path))
    tok = load_tokenizer(str(tmp_path))
    assert tok.source == "tokenizer.json" and not tok.lowercases
    assert tok.added_tokens()["<demo>"]["special"] is False
    assert tok.pieces("M <demo>") == ["M", "<demo>"]
    assert as_handle(hf).family == "WordPiece"


def test_missing_and_empty_dirs(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="tokenizer directory not found"):
        load_tokenizer(str(tmp_path / "nope"))
    with pytest.raises(UserError, match="no tokenizer in"):
        load_tokenizer(str(tmp_path))
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(UserError, match="not a readable tokenizer.json"):
        load_tokenizer(str(tmp_path))
    (tmp_path / "tokenizer.json").unlink()
    (tmp_path / "vocab.json").write_text("{}")
    (tmp_path / "merges.txt").write_text("garbage line without pair structure\n")
    with pytest.raises(UserError) as info:
        load_tokenizer(str(tmp_path))
    assert "\n" not in str(info.value)


def _run(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **env}
    return subprocess.run([sys.executable, "-c", *args], capture_output=True, text=True, env=full, timeout=300)


NO_TORCH = (
    "import sys\n"
    "from ehrdebug.cli.app import main\n"
    "code = main(['check', 'tokenizer', sys.argv[1], '--data', sys.argv[2], '--format', 'json'])\n"
    "assert 'torch' not in sys.modules, 'torch was imported'\n"
    "print('EXIT', code)\n"
)


def test_check_tokenizer_imports_no_torch_tokenizer_json() -> None:
    proc = _run([NO_TORCH, str(TINY), str(FIXTURE)])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "EXIT 1" in proc.stdout


def test_check_tokenizer_imports_no_torch_raw_files(real_tokenizers: Path) -> None:
    for name in ("gpt2_bpe", "t5_spiece"):
        proc = _run([NO_TORCH, str(real_tokenizers / name), str(FIXTURE)])
        assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.mark.slow
def test_hub_id_offline_is_one_line() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "from ehrdebug.cli.app import run; run()", "check", "tokenizer", "ehrdebug-test/no-such-tokenizer", "--data", str(FIXTURE)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ehrdebug: error:")]
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(errors) == 1 and "HF_HUB_OFFLINE" in errors[0] and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_hub_path_goes_through_autotokenizer(tmp_path: Path) -> None:
    """The hub branch is AutoTokenizer.from_pretrained; a saved local dir exercises it without a network."""
    from transformers import PreTrainedTokenizerFast

    from ehrdebug.tokenizers import _from_hub

    PreTrainedTokenizerFast(tokenizer_file=str(TINY / "tokenizer.json")).save_pretrained(str(tmp_path))
    tok = _from_hub(str(tmp_path))
    assert tok.source == "hub (AutoTokenizer)" and tok.family == "byte-level BPE" and tok.hf is not None
    assert tok.pieces("<demo>") == ["<", "de", "m", "o", ">"]
