"""The daemon's delivery side follows settings that change while it runs."""

from __future__ import annotations

from pathlib import Path

from support.fake_collector import FakeCollector, serve

from agent.clock import now
from agent.config import AgentSettings
from agent.credential import Credential, save_credential
from agent.daemon import Delivery, open_outbox


def settings(state: Path, **upload: object) -> AgentSettings:
    return AgentSettings.model_validate({"state_dir": state, "upload": upload})


def test_new_settings_apply_to_the_running_upload_loop(tmp_path: Path) -> None:
    first = settings(tmp_path, interval="60s", max_backoff="10m", batch_records=500)
    outbox = open_outbox(first)
    delivery = Delivery(first, outbox)
    loop = delivery.loop(lambda seconds: True)
    assert loop.interval == 60 and loop.backoff.cap == 600

    second = AgentSettings.model_validate({"state_dir": tmp_path, "outbox": {"max_bytes": "1MB"},
                                           "upload": {"interval": "5m", "max_backoff": "1h"}})
    delivery.apply(second)
    assert loop.interval == 300 and loop.backoff.cap == 3600
    assert outbox.max_bytes == 1_000_000
    outbox.close()


def test_a_new_batch_size_rebuilds_the_uploader_but_does_not_lift_a_refusal(tmp_path: Path) -> None:
    refusing = FakeCollector(lambda batch: (401, {}, {"detail": "unknown agent credential"}))
    with serve(refusing) as url:
        save_credential(tmp_path, Credential(url, "sna_old", "b", "s", "pi"))
        current = settings(tmp_path, batch_records=500)
        outbox = open_outbox(current)
        outbox.add("system", now(), False, "probe failed", None)
        delivery = Delivery(current, outbox)
        loop = delivery.loop(lambda seconds: True)
        loop.step()
        assert len(refusing.batches) == 1 and outbox.status().credential_rejected

        delivery.apply(settings(tmp_path, batch_records=10))
        loop.step()
        assert len(refusing.batches) == 1, "only a new credential lifts a refusal"

    accepting = FakeCollector()
    with serve(accepting) as url:
        save_credential(tmp_path, Credential(url, "sna_new", "b", "s", "pi"))
        loop.step()
    assert accepting.headers[0]["Authorization"] == "Bearer sna_new"
    assert outbox.status().records == 0 and outbox.status().credential_rejected is None
    assert loop.uploader is not None and loop.uploader.batch_records == 10
    loop._close()
    outbox.close()


def test_a_missing_ca_bundle_is_logged_and_retried_not_fatal(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    save_credential(tmp_path, Credential("https://127.0.0.1:9", "sna", "b", "s", "pi"))
    broken = AgentSettings.model_validate({"state_dir": tmp_path,
                                           "collector": {"ca_bundle": tmp_path / "gone.pem"}})
    outbox = open_outbox(broken)
    loop = Delivery(broken, outbox).loop(lambda seconds: True)
    assert loop.step() == loop.idle_check_seconds
    assert "gone.pem is not a file" in caplog.text
    outbox.close()
