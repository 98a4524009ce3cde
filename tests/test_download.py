"""Tests for audioclf.download using a local HTTP server (no internet)."""

from __future__ import annotations

import io
import threading
import zipfile
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from audioclf.download import ESC50_URL, MIRROR_ENV, DownloadError, download_esc50

CSV_TEXT = (
    "filename,fold,target,category,esc10,src_file,take\n"
    "1-100032-A-0.wav,1,0,dog,True,100032,A\n"
    "1-100038-A-14.wav,1,14,chirping_birds,False,100038,A\n"
)
AUDIO = {
    "1-100032-A-0.wav": b"\x00\x01fake-audio-1",
    "1-100038-A-14.wav": b"\x02\x03fake-audio-2",
}


def make_zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def good_entries(top: str = "ESC-50-master") -> dict[str, bytes]:
    entries = {f"{top}/meta/esc50.csv": CSV_TEXT.encode()}
    entries.update({f"{top}/audio/{k}": v for k, v in AUDIO.items()})
    entries[f"{top}/README.md"] = b"readme"
    return entries


GOOD_ZIP = make_zip(good_entries())


class Server:
    """Holds routes and request counts for the fixture's HTTP server."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.routes: dict[str, tuple[str, bytes]] = {}  # path -> (mode, body)
        self.hits: Counter[str] = Counter()
        self.base = ""
        self.monkeypatch = monkeypatch

    def add(self, path: str, body: bytes, mode: str = "ok") -> str:
        """Serve `body` at `path` and allow that address as the owner's mirror; return it."""
        self.routes[path] = (mode, body)
        return self.allow(self.base + path)

    def allow(self, url: str) -> str:
        self.monkeypatch.setenv(MIRROR_ENV, url)  # the explicit owner's setting; nothing else is fetched
        return url


def _make_handler(state: Server) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            state.hits[self.path] += 1
            route = state.routes.get(self.path)
            if route is None:
                self.send_error(404, "Not Found")
                return
            mode, body = route
            if mode == "redirect":
                self.send_response(302)
                self.send_header("Location", body.decode())
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if mode == "truncated":
                self.send_response(200)
                self.send_header("Content-Type", "application/zip")
                self.send_header("Content-Length", str(len(body) + 5000))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/zip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # silence
            pass

    return Handler


@pytest.fixture()
def server(monkeypatch: pytest.MonkeyPatch):
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    state = Server(monkeypatch)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(state))
    httpd.daemon_threads = True
    state.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def leftovers(dest: Path) -> list[str]:
    return sorted(p.name for p in dest.iterdir()) if dest.exists() else []


def test_default_url_is_official_github_archive() -> None:
    assert ESC50_URL == "https://github.com/karolpiczak/ESC-50/archive/master.zip"


def test_successful_download(server: Server, tmp_path: Path) -> None:
    url = server.add("/esc50.zip", GOOD_ZIP)
    dest = tmp_path / "data"
    calls: list[tuple[int, int | None]] = []
    seen_part_files: list[list[str]] = []

    def progress(done: int, total: int | None) -> None:
        calls.append((done, total))
        seen_part_files.append([p.name for p in dest.glob(".esc50-download-*.zip.part")])

    result = download_esc50(dest, url=url, progress=progress, show_bar=False, timeout=10)

    assert result == dest / "esc50"
    assert (result / "meta" / "esc50.csv").read_text() == CSV_TEXT
    for name, data in AUDIO.items():
        assert (result / "audio" / name).read_bytes() == data
    assert calls, "progress callback never called"
    assert calls[-1] == (len(GOOD_ZIP), len(GOOD_ZIP))
    assert all(b <= a for (b, _), (a, _) in zip(calls, calls[1:]))
    # the in-progress download lives inside dest as a hidden .part file
    assert seen_part_files[0] and len(seen_part_files[0]) == 1
    # no temporary files remain afterwards
    assert leftovers(dest) == ["esc50"]
    assert server.hits["/esc50.zip"] == 1


def test_second_call_does_not_download_again(server: Server, tmp_path: Path) -> None:
    url = server.add("/esc50.zip", GOOD_ZIP)
    first = download_esc50(tmp_path, url=url, timeout=10)  # default show_bar=True (tqdm path)
    assert server.hits["/esc50.zip"] == 1
    calls: list[tuple[int, int | None]] = []
    second = download_esc50(
        tmp_path, url=url, show_bar=False, timeout=10, progress=lambda d, t: calls.append((d, t))
    )
    assert second == first
    assert server.hits["/esc50.zip"] == 1
    assert calls == []


def test_existing_dataset_needs_no_server(tmp_path: Path) -> None:
    meta = tmp_path / "esc50" / "meta"
    meta.mkdir(parents=True)
    (meta / "esc50.csv").write_text(CSV_TEXT)
    # unreachable URL: would fail if any request were attempted
    result = download_esc50(tmp_path, url="http://127.0.0.1:9/nothing.zip", show_bar=False, timeout=1)
    assert result == tmp_path / "esc50"


def test_truncated_response(server: Server, tmp_path: Path) -> None:
    url = server.add("/trunc.zip", GOOD_ZIP, mode="truncated")
    with pytest.raises(DownloadError) as info:
        download_esc50(tmp_path, url=url, show_bar=False, timeout=10)
    msg = str(info.value)
    assert url in msg and "incomplete" in msg
    assert not (tmp_path / "esc50").exists()
    assert leftovers(tmp_path) == []


def test_http_404_names_url(server: Server, tmp_path: Path) -> None:
    url = server.allow(server.base + "/does-not-exist.zip")
    with pytest.raises(DownloadError) as info:
        download_esc50(tmp_path, url=url, show_bar=False, timeout=10)
    assert url in str(info.value)
    assert "404" in str(info.value)
    assert server.hits["/does-not-exist.zip"] == 1
    assert leftovers(tmp_path) == []


def test_connection_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as s:  # grab a free port, then close it so nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/esc50.zip"
    monkeypatch.setenv(MIRROR_ENV, url)
    with pytest.raises(DownloadError) as info:
        download_esc50(tmp_path, url=url, show_bar=False, timeout=5)
    assert url in str(info.value)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "entries",
    [
        pytest.param(
            {k.replace("ESC-50-master/", "", 1): v for k, v in good_entries().items()},
            id="no-top-folder",
        ),
        pytest.param({**good_entries("A"), **good_entries("B")}, id="two-top-folders"),
        pytest.param(
            {k: v for k, v in good_entries().items() if not k.endswith("esc50.csv")},
            id="missing-csv",
        ),
        pytest.param(
            {k: v for k, v in good_entries().items() if "/audio/" not in k},
            id="missing-audio",
        ),
    ],
)
def test_wrong_layout_rejected(server: Server, tmp_path: Path, entries: dict[str, bytes]) -> None:
    url = server.add("/layout.zip", make_zip(entries))
    with pytest.raises(DownloadError, match="layout"):
        download_esc50(tmp_path, url=url, show_bar=False, timeout=10)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "evil_name",
    ["ESC-50-master/../evil", "../evil", "/tmp/evil-abs", "ESC-50-master/audio/../../evil"],
)
def test_path_traversal_rejected(server: Server, tmp_path: Path, evil_name: str) -> None:
    dest = tmp_path / "dest"
    url = server.add("/evil.zip", make_zip({**good_entries(), evil_name: b"pwned"}))
    with pytest.raises(DownloadError, match="unsafe path"):
        download_esc50(dest, url=url, show_bar=False, timeout=10)
    assert leftovers(dest) == []
    assert not (tmp_path / "evil").exists()
    assert not any(tmp_path.rglob("evil"))


def test_not_a_zip(server: Server, tmp_path: Path) -> None:
    url = server.add("/html.zip", b"<html>rate limited</html>")
    with pytest.raises(DownloadError, match="not a valid zip"):
        download_esc50(tmp_path, url=url, show_bar=False, timeout=10)
    assert leftovers(tmp_path) == []


def test_corrupt_member_crc(server: Server, tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, data in good_entries().items():
            zf.writestr(name, data)
    raw = bytearray(buf.getvalue())
    marker = raw.find(b"fake-audio-1")
    assert marker > 0
    raw[marker] ^= 0xFF  # flip a byte of stored member data -> CRC mismatch
    url = server.add("/crc.zip", bytes(raw))
    with pytest.raises(DownloadError, match="corrupt"):
        download_esc50(tmp_path, url=url, show_bar=False, timeout=10)
    assert leftovers(tmp_path) == []


def test_keyboard_interrupt_cleans_up_and_propagates(server: Server, tmp_path: Path) -> None:
    url = server.add("/esc50.zip", GOOD_ZIP)

    def interrupt(done: int, total: int | None) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        download_esc50(tmp_path, url=url, progress=interrupt, show_bar=False, timeout=10)
    assert leftovers(tmp_path) == []


def test_incomplete_existing_folder_is_not_clobbered(server: Server, tmp_path: Path) -> None:
    url = server.add("/esc50.zip", GOOD_ZIP)
    keep = tmp_path / "esc50" / "mine.txt"
    keep.parent.mkdir()
    keep.write_text("user data")
    with pytest.raises(DownloadError, match="not a complete"):
        download_esc50(tmp_path, url=url, show_bar=False, timeout=10)
    assert keep.read_text() == "user data"
    assert server.hits["/esc50.zip"] == 0


def test_cli_download_through_a_mirror_url(server: Server, tmp_path: Path, capsys) -> None:
    from audioclf.cli import main

    url = server.add("/mirror.zip", GOOD_ZIP)
    assert main(["download", "esc50", "--dest", str(tmp_path), "--url", url]) == 0
    assert (tmp_path / "esc50" / "meta" / "esc50.csv").read_text() == CSV_TEXT
    assert "--data" in capsys.readouterr().out
    assert main(["download", "esc50", "--dest", str(tmp_path / "other"), "--url", server.base + "/nope.zip"]) == 2
    err = capsys.readouterr().err
    assert "404" in err and "nope.zip" in err and "Traceback" not in err and not (tmp_path / "other" / "esc50").exists()


# --- only the known address or the owner's mirror (issue 10, item 3) ------------------------------

@pytest.mark.parametrize("url", ["http://127.0.0.1:{port}/other.zip", "http://localhost:{port}/esc50.zip",
                                 "https://example.org/esc50.zip", "file:///etc/passwd", "ftp://127.0.0.1/x.zip",
                                 "{mirror}/../other.zip"])
def test_an_address_that_is_neither_official_nor_the_mirror_is_refused(server: Server, tmp_path: Path,
                                                                        url: str) -> None:
    mirror = server.add("/esc50.zip", GOOD_ZIP)
    url = url.format(port=server.base.rsplit(":", 1)[1], mirror=mirror)
    dest = tmp_path / "dest"
    with pytest.raises(DownloadError, match="Refused to download"):
        download_esc50(dest, url=url, show_bar=False, timeout=5)
    assert not dest.exists() and sum(server.hits.values()) == 0  # no folder made, nothing fetched


def test_file_urls_are_refused_even_when_configured_or_from_the_cli(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(MIRROR_ENV, "file:///etc/passwd")
    for any_url in (False, True):
        with pytest.raises(DownloadError, match="only http and https"):
            download_esc50(tmp_path / "d", show_bar=False, any_url=any_url)
    assert not (tmp_path / "d").exists()


def test_the_default_address_is_the_configured_mirror(server: Server, tmp_path: Path) -> None:
    server.add("/mirror.zip", GOOD_ZIP)
    assert download_esc50(tmp_path, show_bar=False, timeout=10) == tmp_path / "esc50"
    assert server.hits["/mirror.zip"] == 1


def test_a_redirect_off_http_is_refused(server: Server, tmp_path: Path) -> None:
    url = server.add("/moved.zip", b"ftp://127.0.0.1/esc50.zip", mode="redirect")
    with pytest.raises(DownloadError, match="redirect to 'ftp://127.0.0.1/esc50.zip' refused"):
        download_esc50(tmp_path, url=url, show_bar=False, timeout=10)
    assert leftovers(tmp_path) == []


def test_a_redirect_from_outside_onto_this_machine_is_refused() -> None:
    import urllib.error
    import urllib.request

    from audioclf.download import _SafeRedirect

    req = urllib.request.Request("https://mirror.example.org/esc50.zip")
    for target in ("http://127.0.0.1:8501/", "http://localhost/x", "http://169.254.169.254/latest", "http://10.0.0.5/"):
        with pytest.raises(urllib.error.HTTPError, match="refused"):
            _SafeRedirect().redirect_request(req, None, 302, "Found", {}, target)
    assert _SafeRedirect().redirect_request(req, None, 302, "Found", {}, "https://codeload.github.com/x.zip")
