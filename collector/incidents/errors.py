"""What an incident action that cannot be done raises: the message says why, and its class
what the caller answers (the API's status code, the CLI's exit)."""

from __future__ import annotations


class IncidentError(ValueError):
    """An incident action that cannot be done; the message says why."""


class UnknownIncident(IncidentError):
    """No incident with that id (the API answers 404, the CLI exits 1)."""


class NotAllowedNow(IncidentError):
    """The move is not allowed from the incident's state (the API answers 409)."""


class InvalidInput(IncidentError):
    """What a person typed breaks action_input.py's limits (the API answers 422)."""
