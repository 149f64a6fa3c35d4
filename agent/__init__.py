"""schoolnet agent: measures a school's network and delivers the results to its collector."""

__version__ = "0.1.0"
