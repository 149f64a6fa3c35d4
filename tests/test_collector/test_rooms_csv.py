"""The rooms CSV: rooms named before agents use them, every bad row reported, and back out."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.cli import main
from collector.db.engine import open_engine
from collector.db.migrate import upgrade
from collector.registry import add_board, add_school

ROOMS = """board;school;room;room_name
primo;regenboog;;Lokaal 12
primo;regenboog;gym;Gymzaal
primo;kompas;b-1-04;B 1.04 (bovenbouw)
"""


@pytest.fixture
def store(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    engine = open_engine(url)
    upgrade(engine)
    add_board(engine, "Stichting Primo", "primo")
    add_school(engine, "primo", "De Regenboog", "regenboog")
    add_school(engine, "primo", "Het Kompas", "kompas")
    engine.dispose()
    return url


def run(store: str, *args: str) -> int:
    return main([*args, "--db", store])


def test_rooms_round_trip_and_a_second_import_changes_nothing(
        store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "rooms.csv"
    path.write_text("\ufeff" + ROOMS.replace("\n", "\r\n"), encoding="utf-8")  # as Excel saves it
    assert run(store, "import", "rooms", str(path)) == 0
    assert "3 created, 0 renamed" in capsys.readouterr().err
    assert run(store, "export", "rooms") == 0
    exported = capsys.readouterr().out
    assert exported == ("board,school,room,room_name\n"
                        "primo,kompas,b-1-04,B 1.04 (bovenbouw)\n"
                        "primo,regenboog,gym,Gymzaal\n"
                        "primo,regenboog,lokaal-12,Lokaal 12\n")
    again = tmp_path / "again.csv"
    again.write_text(exported)
    assert run(store, "import", "rooms", str(again)) == 0
    assert "0 created, 0 renamed, 3 unchanged" in capsys.readouterr().err
    renamed = tmp_path / "renamed.csv"
    renamed.write_text("board,school,room,room_name\nprimo,regenboog,gym,Sporthal\n")
    assert run(store, "import", "rooms", str(renamed)) == 0
    assert "0 created, 1 renamed" in capsys.readouterr().err
    # The school's rooms command shows the room before anyone measured in it.
    assert run(store, "rooms", "--school", "primo/regenboog", "--json") == 0
    assert "Sporthal" in capsys.readouterr().out


def test_every_bad_row_is_reported_and_nothing_is_imported(
        store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("board,school,room,room_name\n"
                    "primo,regenboog,lokaal-1,Lokaal 1\n"
                    "primo,,lokaal-2,Lokaal 2\n"
                    "primo,regenboog,Lokaal 3!,\n"
                    "primo,regenboog,,\n"
                    "primo,regenboog,lokaal-1,Lokaal 1 again\n")
    assert run(store, "import", "rooms", str(path)) == 1
    err = capsys.readouterr().err.splitlines()
    assert any(f"{path}:3: school:" in line for line in err)
    assert any(f"{path}:4: room:" in line for line in err)
    assert any(f"{path}:5: room: empty" in line for line in err)
    assert any(f"{path}:6: room: primo/regenboog/lokaal-1 is on line 2 already" in line for line in err)
    assert err[-1].endswith("nothing was imported (4 problems)")
    unknown = tmp_path / "unknown.csv"
    unknown.write_text("board,school,room_name\nprimo,regenboog,Aula\nprimo,elders,Aula\n")
    assert run(store, "import", "rooms", str(unknown)) == 1
    assert f"{unknown}:3: school: no school primo/elders" in capsys.readouterr().err
    assert run(store, "export", "rooms") == 0
    assert capsys.readouterr().out == "board,school,room,room_name\n", "nothing half-imported"


def test_a_file_that_is_not_a_rooms_csv_is_one_line(store: str, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert run(store, "import", "rooms", str(empty)) == 1
    assert "the file is empty" in capsys.readouterr().err
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("school,lokaal\nregenboog,12\n")
    assert run(store, "import", "rooms", str(wrong)) == 1
    err = capsys.readouterr().err
    assert "lokaal: unknown column" in err and "board: the column is missing" in err
    latin = tmp_path / "latin.csv"
    latin.write_bytes("board,school,room_name\nprimo,regenboog,Lokaal é\n".encode("cp1252"))
    assert run(store, "import", "rooms", str(latin)) == 2
    assert "save it as CSV UTF-8" in capsys.readouterr().err
    assert run(store, "import", "rooms", str(tmp_path / "missing.csv")) == 2
    assert run(store, "export", "rooms", "--board", "nobody") == 2
    assert "no board with id 'nobody'" in capsys.readouterr().err
