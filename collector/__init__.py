"""schoolnet collector: keeps what agents measured, judges it, exposes it to Prometheus."""

from agent import __version__

__all__ = ["__version__"]
