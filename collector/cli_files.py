"""What the import and export commands share: reading a file a board saved, and writing
what was asked for to a file or standard output, with one-line errors."""

from __future__ import annotations

import sys
from pathlib import Path


def read_text_file(path: Path) -> str:
    """The file's text (UTF-8, as "CSV UTF-8" saves it); UsageError with one line otherwise."""
    from collector.cli import UsageError

    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a folder, not a file") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 text (byte {exc.start}); save it as CSV UTF-8") from None
    except OSError as exc:
        raise UsageError(f"{path}: {exc.strerror}") from None


def write_output(text: str, output: Path | None) -> None:
    """``text`` to ``output`` (``--output FILE``), or to standard output without one."""
    from collector.cli import UsageError

    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--output {output}: {exc.strerror}") from None


def print_import_errors(errors: list[str], shown: str) -> None:
    """Every problem of a refused file on its own line (``shown``: the errors as the
    exception's text, with its "and N more"), then that nothing was imported."""
    from collector.cli import PROG

    for line in shown.splitlines():
        print(f"{PROG}: error: {line}", file=sys.stderr)
    print(f"{PROG}: nothing was imported ({len(errors)} problems)", file=sys.stderr)
