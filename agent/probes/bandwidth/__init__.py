"""The ``bandwidth`` probe: what the school's line delivers, in both directions."""

from __future__ import annotations

from agent.probes import Measurement, Probe, ProbeError
from agent.probes.bandwidth.backend import Backend, TransferError
from agent.probes.bandwidth.http import HttpBackend
from agent.transport import same_origin
from agent.wire import BandwidthPayload


class BandwidthProbe(Probe):
    name = "bandwidth"

    def make_backend(self) -> Backend:
        config = self.config
        credential = self.context.credential
        server = config.server
        if not server:
            if credential is None:
                raise ProbeError("no test server: set probes.bandwidth.server or enrol the "
                                 "agent to test against its collector")
            server = credential.collector_url
        # The credential goes to our own collector only, never to another server.
        secret = credential.credential if credential and same_origin(
            server, credential.collector_url) else None
        if config.backend == "http":
            return HttpBackend(server, secret, self.context.settings.collector.ca_bundle)
        raise ProbeError(f"unknown bandwidth backend {config.backend!r}")

    def run(self) -> Measurement:
        config = self.config
        backend = self.make_backend()
        try:
            values: dict[str, object] = {"backend": backend.name, "server": backend.server,
                                         "streams": backend.streams}
            try:
                values["idle_latency_seconds"] = backend.ping()
            except TransferError:
                values["idle_latency_seconds"] = None
            for direction in ("download", "upload"):
                transfer = getattr(backend, direction)
                try:
                    result = transfer(config.duration, config.max_bytes)
                except TransferError as exc:
                    values[f"{direction}_error"] = str(exc)
                    continue
                values[f"{direction}_bytes_per_second"] = result.bytes_per_second
                values[f"{direction}_bytes"] = result.bytes
                values[f"{direction}_seconds"] = result.seconds
        finally:
            backend.close()
        payload = BandwidthPayload.model_validate(values)
        errors = [e for e in (payload.download_error, payload.upload_error) if e]
        if payload.download_bytes_per_second is None and payload.upload_bytes_per_second is None:
            return Measurement.failed("; ".join(errors), payload)
        return Measurement.of(payload)
