"""The ``bandwidth`` probe: what the school's line delivers, in both directions."""

from __future__ import annotations

from agent.config import BandwidthProbeConfig
from agent.probes import Probe, ProbeError, one_line_reason
from agent.probes.bandwidth.backend import Backend, TransferError, backend_class
from agent.probes.bandwidth.exclusive import Busy, exclusive_test
from agent.transport import same_origin
from agent.wire import BandwidthPayload


class BandwidthProbe(Probe):
    name = "bandwidth"
    default_interval = 6 * 3600.0
    config_model = BandwidthProbeConfig

    def make_backend(self) -> Backend:
        config = self.config
        credential = self.context.credential
        server = config.server
        if not server:
            if credential is None:
                raise ProbeError("no test server: set probes.bandwidth.server or enrol the "
                                 "agent to test against its collector")
            server = self.context.settings.collector.url or credential.collector_url
        # The credential goes to our own collector only, never to another server.
        secret = credential.credential if credential and same_origin(
            server, self.context.settings.collector.url or credential.collector_url) else None
        try:
            factory = backend_class(config.backend)
        except ValueError as exc:
            raise ProbeError(str(exc)) from None
        return factory(server, secret, self.context.settings.collector.ca_bundle)

    def run(self) -> BandwidthPayload:
        try:
            with exclusive_test(self.context.state_dir):
                payload = self._measure_both_directions()
        except Busy as exc:
            raise ProbeError(str(exc)) from None
        if payload.download_bytes_per_second is None and payload.upload_bytes_per_second is None:
            errors = [e for e in (payload.download_error, payload.upload_error) if e]
            raise ProbeError("; ".join(errors), payload)
        return payload

    def _measure_both_directions(self) -> BandwidthPayload:
        config = self.config
        backend = self.make_backend()
        values: dict[str, object] = {"backend": backend.name, "server": backend.server,
                                     "streams": backend.streams}
        try:
            try:
                values["idle_latency_seconds"] = backend.ping()
            except TransferError:
                # Latency is context, not the measurement: its failure does not void one.
                values["idle_latency_seconds"] = None
            for direction in ("download", "upload"):
                transfer = getattr(backend, direction)
                try:
                    result = transfer(config.duration, config.max_bytes)
                except TransferError as exc:
                    values[f"{direction}_error"] = one_line_reason(str(exc) or f"{direction} failed")
                    continue
                values[f"{direction}_bytes_per_second"] = result.bytes_per_second
                values[f"{direction}_bytes"] = result.bytes
                values[f"{direction}_seconds"] = result.seconds
        finally:
            backend.close()
        return BandwidthPayload.model_validate(values)
