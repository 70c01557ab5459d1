"""Downloads are checksum-verified and atomic, against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import functools
import hashlib
import http.server
import socket
import threading
from pathlib import Path

import pytest

from tunelab.data import TimeSeriesDataModule
from tunelab.data.download import download
from tunelab.errors import UserError

CSV = b"date,OT\n" + b"".join(f"2020-01-01 {h:02d}:00:00,{h}.5\n".encode() for h in range(24))


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    (root / "series.csv").write_bytes(CSV)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_verified_download_lands_whole(server, tmp_path):
    dest = tmp_path / "data" / "series.csv"
    download(f"{server}/series.csv", dest, hashlib.sha256(CSV).hexdigest())
    assert dest.read_bytes() == CSV
    assert leftovers(dest.parent) == ["series.csv"]


def test_wrong_checksum_leaves_nothing(server, tmp_path):
    dest = tmp_path / "data" / "series.csv"
    with pytest.raises(UserError, match="sha256") as err:
        download(f"{server}/series.csv", dest, "0" * 64)
    assert str(dest) in str(err.value)
    assert leftovers(dest.parent) == []


def test_missing_remote_file_leaves_nothing(server, tmp_path):
    dest = tmp_path / "data" / "series.csv"
    with pytest.raises(UserError, match="could not download"):
        download(f"{server}/absent.csv", dest, "0" * 64)
    assert leftovers(dest.parent) == []


def test_offline_error_says_where_to_put_the_file(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dest = tmp_path / "ETT-small" / "ETTh1.csv"
    with pytest.raises(UserError) as err:
        download(f"http://127.0.0.1:{port}/ETTh1.csv", dest, "0" * 64, timeout=5)
    assert f"place the file at {dest}" in str(err.value)
    assert leftovers(dest.parent) == []


def test_datamodule_downloads_when_missing(server, tmp_path):
    dest = tmp_path / "data" / "series.csv"
    dm = TimeSeriesDataModule(
        path=str(dest),
        url=f"{server}/series.csv",
        sha256=hashlib.sha256(CSV).hexdigest(),
        target="OT",
        seq_len=2,
        horizon=1,
        ratios=[0.5, 0.25, 0.25],
    )
    dm.prepare_data()
    dm.setup()
    assert dest.read_bytes() == CSV and len(dm.datasets["train"]) == 12 - 3 + 1
