"""`schoolnet-collector` commands: calendar (being written)."""

from __future__ import annotations

import argparse
from typing import Any, TypeAlias

# argparse._SubParsersAction is not subscriptable at run time: annotations only.
Subcommands: TypeAlias = "argparse._SubParsersAction[Any]"


def register(commands: Subcommands, imports: Subcommands, exports: Subcommands) -> None:
    """Add this module's commands to the collector's parser (`imports`, `exports`: the
    actions of `import` and `export`)."""
