"""Incidents: from a sustained, corroborated problem to an evidence pack for the provider.

- ``model``: the words (kinds, states, findings) and the thresholds detection uses;
- ``history``: what the store holds of a school over a period, in one read;
- ``detect``: pure detectors over a history (what is wrong now, and is it proven);
- ``sla``, ``impact``, ``contacts``: the SLA clock, impact and urgency from the calendar,
  and who in the board escalates;
- ``store``: a detection applied (incidents opened, refreshed, reassessed, recovered);
  ``provider_wide``: schools' incidents merged into one per provider; ``lifecycle``: what
  people do (acknowledge, escalate, resolve, dismiss, note, ticket); ``views``: incidents
  read back with their events and time to restore; ``changes``, ``documents``, ``errors``:
  what those share (events and notifications, the stored JSON, the errors);
- ``action_input``: what a person may type (names, notes, tickets);
- ``notify``: webhook and e-mail for state changes, through a durable outbox;
- ``evidence``, ``text``, ``sentences``, ``render``, ``pdf``, ``export``, ``shares``: the
  evidence pack (web, PDF, CSV/JSON; Dutch and English) and its share links.
"""
