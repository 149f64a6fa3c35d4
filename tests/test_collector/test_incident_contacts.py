"""Escalation contacts (collector/incidents/contacts.py): a board's central ICT person or each
school's own contact, set with `board set` / `school set` in a real store, shown, checked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, update

from collector.cli import main
from collector.db.engine import open_engine, writer
from collector.db.migrate import upgrade
from collector.db.schema import boards, schools
from collector.incidents.contacts import (
    Contact,
    ContactError,
    check_email,
    check_phone,
    escalation_contact,
    parse_escalation,
)
from collector.registry import add_board, add_school, resolve_school


@pytest.fixture
def store(tmp_path: Path) -> tuple[Engine, str]:
    url = f"sqlite:///{tmp_path}/c.db"
    engine = open_engine(url)
    upgrade(engine)
    add_board(engine, "Primo", "primo")
    add_school(engine, "primo", "Regenboog", "regenboog")
    add_school(engine, "primo", "Kompas", "kompas")
    return engine, url


def contact_of(engine: Engine, school: str) -> Contact | None:
    with engine.connect() as conn:
        return escalation_contact(conn, resolve_school(conn, school)[0])


def cli(url: str, *argv: str) -> int:
    return main([*argv, "--db", url])


def test_nobody_is_known_until_someone_is_set(store: tuple[Engine, str]) -> None:
    engine, _ = store
    assert contact_of(engine, "regenboog") is None
    with engine.connect() as conn:
        assert escalation_contact(conn, 999) is None


def test_each_school_its_own_contact(store: tuple[Engine, str], capsys: pytest.CaptureFixture[str]) -> None:
    engine, url = store
    assert cli(url, "school", "set", "regenboog", "contact_name=Anna Bakker",
               "contact_email=ict@regenboog.example", "contact_phone=+31 30 123 4567") == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["contact_name"], shown["contact_email"], shown["contact_phone"]) == (
        "Anna Bakker", "ict@regenboog.example", "+31 30 123 4567")
    assert contact_of(engine, "regenboog") == Contact("Anna Bakker", "ict@regenboog.example",
                                                      "+31 30 123 4567", "school")
    assert contact_of(engine, "kompas") is None
    # A name alone reaches nobody.
    assert cli(url, "school", "set", "kompas", "contact_name=Piet") == 0
    capsys.readouterr()
    assert contact_of(engine, "kompas") is None
    assert cli(url, "school", "show", "kompas") == 0
    assert json.loads(capsys.readouterr().out)["contact_name"] == "Piet"
    # An empty value clears one.
    assert cli(url, "school", "set", "regenboog", "contact_email=") == 0
    assert contact_of(engine, "regenboog") == Contact("Anna Bakker", None, "+31 30 123 4567", "school")


def test_a_central_ict_person_for_every_school(store: tuple[Engine, str],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    engine, url = store
    assert cli(url, "school", "set", "regenboog", "contact_email=ict@regenboog.example") == 0
    capsys.readouterr()
    assert cli(url, "board", "set", "primo", "escalation=central", "escalation_name=Jan de Vries",
               "escalation_email=ict@primo.example") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["escalation"] == {"mode": "central", "name": "Jan de Vries", "email": "ict@primo.example",
                                   "phone": None}
    assert shown["rule_set"] == "acm"  # the policy is printed as before, beside it
    central = Contact("Jan de Vries", "ict@primo.example", None, "central")
    assert contact_of(engine, "regenboog") == central and contact_of(engine, "kompas") == central
    assert central.english() == "Jan de Vries <ict@primo.example> (the board's central ICT contact)"
    # One detail changed later keeps the others.
    assert cli(url, "board", "set", "primo", "escalation_phone=030-1234567") == 0
    capsys.readouterr()
    assert cli(url, "board", "show", "primo") == 0
    assert json.loads(capsys.readouterr().out)["escalation"]["phone"] == "030-1234567"
    # Back to each school: the central person is forgotten, the school's own contact applies.
    assert cli(url, "board", "set", "primo", "escalation=school") == 0
    assert json.loads(capsys.readouterr().out)["escalation"] == {"mode": "school"}
    assert contact_of(engine, "regenboog") == Contact(None, "ict@regenboog.example", None, "school")
    assert contact_of(engine, "kompas") is None


@pytest.mark.parametrize(("argv", "message"), [
    (["board", "set", "primo", "escalation=central", "escalation_name=Jan"],
     "escalation=central needs escalation_email or escalation_phone"),
    (["board", "set", "primo", "escalation=central", "escalation_email=ict@primo"],
     "'ict@primo' is not an e-mail address"),
    (["board", "set", "primo", "escalation=central", "escalation_email=jan de vries@primo.example"],
     "is not an e-mail address"),
    (["board", "set", "primo", "escalation=central", "escalation_phone=call me"], "is not a phone number"),
    (["board", "set", "primo", "escalation=sometimes"], "'sometimes' is not one of central, school"),
    (["board", "set", "primo", "escalation_email=ict@primo.example"], "only for escalation=central"),
    (["board", "set", "primo", "escalation_mail=ict@primo.example"], "unknown escalation key"),
    # A bad policy key with a good contact: neither is stored.
    (["board", "set", "primo", "rule_set=ofcom", "escalation=central", "escalation_email=a@primo.example"],
     "policy: rule_set"),
    (["board", "set", "nope", "escalation=school"], "no board with id 'nope'"),
    (["school", "set", "regenboog", "contact_email=@regenboog.example"], "contact_email: '@regenboog"),
    (["school", "set", "regenboog", "contact_phone=12"], "contact_phone: '12' is not a phone number"),
    (["school", "set", "regenboog", "contact_colour=red"], "unknown school detail 'contact_colour'"),
])
def test_bad_contacts_are_one_line_and_change_nothing(store: tuple[Engine, str],
                                                      capsys: pytest.CaptureFixture[str],
                                                      argv: list[str], message: str) -> None:
    engine, url = store
    assert cli(url, *argv) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1 and "Traceback" not in error
    with engine.connect() as conn:
        assert conn.scalar(select(boards.c.escalation)) is None
        assert conn.scalar(select(boards.c.rule_set)) is None
        assert conn.execute(select(schools.c.contact_email, schools.c.contact_phone)).all() == [
            (None, None), (None, None)]


def test_a_stored_document_that_no_longer_reads_counts_as_none_set(store: tuple[Engine, str]) -> None:
    engine, _ = store
    with writer(engine) as conn, conn.begin():
        conn.execute(update(boards).values(escalation={"mode": "central", "email": "not an address"}))
        conn.execute(update(schools).where(schools.c.slug == "kompas")
                     .values(contact_phone="+31 6 1234 5678"))
    assert contact_of(engine, "regenboog") is None
    assert contact_of(engine, "kompas") == Contact(None, None, "+31 6 1234 5678", "school")


def test_the_checks() -> None:
    assert check_email(" ict@primo.example ") == "ict@primo.example"
    assert check_phone("+31 (0)30 123-4567") == "+31 (0)30 123-4567"
    for bad in ("ict", "ict@", "@primo.example", "a@@primo.example", "ict@primo.", "i ct@primo.example",
                "x" * 320 + "@primo.example", "ict@primo.example,noc", "<ict@primo.example>",
                "ict@primo.example;x", '"i"@primo.example'):
        with pytest.raises(ContactError):
            check_email(bad)
    for bad in ("", "phone", "++31 30", "030-", "1" * 65):
        with pytest.raises(ContactError):
            check_phone(bad)
    assert parse_escalation(None).mode == "school"
    with pytest.raises(ContactError, match="unknown field 'mail'"):
        parse_escalation({"mode": "central", "mail": "ict@primo.example"})
