"""``python -m ehrdebug`` is the ``ehrdebug`` command."""

from ehrdebug.cli.app import run

run()
