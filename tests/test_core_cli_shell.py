"""The CLI shell: instant help (no heavy imports), version, exit code 2 with one line for usage errors."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

HEAVY = ("torch", "transformers", "peft", "captum", "pandas")


@pytest.mark.parametrize("args", [["--help"], ["--version"]])
def test_help_and_version_import_nothing_heavy(args: list[str]) -> None:
    code = (
        "import sys\n"
        "from ehrdebug.cli.app import main\n"
        f"rc = main({args!r})\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
        "sys.exit(rc)\n"
    )
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    elapsed = time.perf_counter() - start
    assert out.returncode == 0, out.stderr
    assert "HEAVY []" in out.stdout
    assert elapsed < 10  # generous for a loaded 2-core CI box; typically well under 1 s


def test_version_prints_the_package_version() -> None:
    from ehrdebug import __version__

    out = subprocess.run([sys.executable, "-m", "ehrdebug", "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == f"ehrdebug {__version__}"


def test_every_listed_command_works() -> None:
    """Only commands that work are listed: every listed group has at least one subcommand with help."""
    import typer.main

    from ehrdebug.cli.app import app, main

    root = typer.main.get_command(app)
    for name in root.list_commands(None):  # type: ignore[arg-type]
        command = root.get_command(None, name)  # type: ignore[arg-type]
        assert command is not None
        subcommands = getattr(command, "commands", None)
        if subcommands is not None:
            assert subcommands, f"group {name!r} is listed but has no commands"
        assert main([name, "--help"]) == 0


def test_unknown_command_is_a_usage_error_with_one_line() -> None:
    out = subprocess.run([sys.executable, "-m", "ehrdebug", "no-such-command"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
