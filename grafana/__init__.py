"""Grafana provisioning and dashboards for schoolnet (see docs/grafana.md)."""
