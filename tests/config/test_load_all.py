"""load_all, the shipped examples, and noticing a changed commanders.csv."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pytest

from shared.config import FileWatch, load_all, load_commanders, load_credentials
from shared.errors import ConfigError

EXAMPLES = Path(__file__).resolve().parents[2] / "deploy" / "edge"
SECRET = "Store-Secret-pw"


def install(folder: Path, config: str, commanders: str, credentials: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "commanders.csv").write_text(commanders)
    creds = folder / "credentials.yaml"
    creds.write_text(credentials)
    creds.chmod(0o600)
    path = folder / "config.yaml"
    path.write_text(config)
    return path


GOOD_CSV = "ip,store,group,brand,enabled\n10.0.0.1,Store 1,West,Shell,true\n"
GOOD_CREDS = f"credentials: {{username: monitor, password: {SECRET}}}\n"


def test_load_all_reads_the_files_next_to_the_config(tmp_path, monkeypatch):
    path = install(tmp_path / "etc", "agent: {id: edge-1}\n", GOOD_CSV, GOOD_CREDS)
    monkeypatch.chdir(tmp_path)
    loaded = load_all(Path("etc/config.yaml"), env={})
    assert loaded.config.path == Path("etc/config.yaml")
    assert [c.store for c in loaded.inventory.for_agent("edge-1")] == ["Store 1"]
    commander = loaded.inventory.commanders[0]
    assert loaded.credentials.for_commander(commander).password == SECRET
    assert SECRET not in repr(loaded)
    assert path.exists()


def test_load_all_reports_errors_of_both_files_together(tmp_path):
    path = install(
        tmp_path,
        "",
        "ip,store,group,brand,enabled\n10.0.0.300,S,g,b,true\n",
        "credentials: {username: monitor}\n",
    )
    with pytest.raises(ConfigError) as caught:
        load_all(path, env={})
    message = str(caught.value)
    assert "commanders.csv:2: ip '10.0.0.300' is not an IP address" in message
    assert "credentials.yaml: credentials.password: missing" in message


def test_load_all_names_a_missing_inventory(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("agent: {commanders_file: stores.csv}\n")
    (tmp_path / "credentials.yaml").write_text(GOOD_CREDS)
    with pytest.raises(ConfigError, match=r"stores\.csv: cannot read"):
        load_all(path, env={})


def test_overrides_that_match_nothing_warn(tmp_path, caplog):
    path = install(
        tmp_path,
        "tls: {stores: {Store 9: {insecure: true}}}\n",
        GOOD_CSV,
        GOOD_CREDS + "groups: {Wset: {password: x}}\n",
    )
    with caplog.at_level(logging.WARNING, logger="shared.config"):
        loaded = load_all(path, env={})
    assert "groups.Wset: matches no group" in caplog.text
    assert "tls.stores.Store 9: matches no store" in caplog.text
    assert len(loaded.warnings) == 2


def test_example_files_load_as_shipped(tmp_path):
    inventory = load_commanders(EXAMPLES / "commanders.example.csv")
    credentials = load_credentials(EXAMPLES / "credentials.example.yaml")
    assert inventory.counts()[True] >= 1
    assert credentials.default.username
    folder = tmp_path / "edge"
    folder.mkdir()
    shutil.copy(EXAMPLES / "config.example.yaml", folder / "config.yaml")
    shutil.copy(EXAMPLES / "commanders.example.csv", folder / "commanders.csv")
    shutil.copy(EXAMPLES / "credentials.example.yaml", folder / "credentials.yaml")
    (folder / "credentials.yaml").chmod(0o600)
    loaded = load_all(folder / "config.yaml", env={})
    assert loaded.warnings == ()
    assert loaded.config.insecure_scopes() == []
    assert len(loaded.inventory.commanders) == len(inventory.commanders)


def test_file_watch_notices_a_replaced_file(tmp_path):
    path = tmp_path / "commanders.csv"
    path.write_text(GOOD_CSV)
    watch = FileWatch(path)
    assert watch.changed() is False
    new = tmp_path / "commanders.csv.new"
    new.write_text(GOOD_CSV)
    os.replace(new, path)
    assert watch.changed() is True
    assert watch.changed() is False


def test_file_watch_notices_an_edit_in_place(tmp_path):
    path = tmp_path / "commanders.csv"
    path.write_text(GOOD_CSV)
    watch = FileWatch(path)
    with path.open("a") as handle:
        handle.write("10.0.0.2,Store 2,West,BP,false\n")
    assert watch.changed() is True
    assert watch.changed() is False


def test_file_watch_notices_removal_and_return(tmp_path):
    path = tmp_path / "commanders.csv"
    path.write_text(GOOD_CSV)
    watch = FileWatch(path)
    path.unlink()
    assert watch.changed() is True
    assert watch.changed() is False
    path.write_text(GOOD_CSV)
    assert watch.changed() is True
