"""Incidents: from a sustained, corroborated problem to an evidence pack for the provider.

- ``model``: the words (kinds, states, findings) and the thresholds detection uses;
- ``history``: what the store holds of a school over a period, in one read;
- ``detect``: pure detectors over a history (what is wrong now, and is it proven);
- ``sla``, ``impact``: the SLA clock, and impact and urgency from the calendar;
- ``store``: incidents opened, refreshed, merged provider-wide and closed; the lifecycle;
- ``notify``: webhook and e-mail for state changes, through a durable outbox;
- ``evidence``, ``render``, ``pdf``, ``export``: the evidence pack (web, PDF, CSV/JSON).
"""
