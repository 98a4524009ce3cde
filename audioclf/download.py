"""Download and unpack the ESC-50 dataset safely.

The archive is streamed to a hidden temporary file inside ``dest``, verified
(length, CRCs, layout, no path traversal), extracted into a hidden temporary
directory inside ``dest`` and only then renamed to ``dest/esc50``. A folder
named ``esc50`` therefore only ever appears once it is complete.
"""

from __future__ import annotations

import http.client
import ipaddress
import os
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath
from typing import Callable

from tqdm import tqdm

from .errors import UserError

__all__ = ["ESC50_URL", "MIRROR_ENV", "DATASET_DIRNAME", "DownloadError", "check_url", "download_esc50",
           "esc50_url"]

ESC50_URL = "https://github.com/karolpiczak/ESC-50/archive/master.zip"
MIRROR_ENV = "AUDIOCLF_ESC50_MIRROR"  # the archive address the server's owner allows besides ESC50_URL
DATASET_DIRNAME = "esc50"
CHUNK_SIZE = 1 << 20  # 1 MiB

_META_CSV = ("meta", "esc50.csv")
_AUDIO_DIR = "audio"

ProgressCallback = Callable[[int, int | None], None]


class DownloadError(UserError):
    """Raised when the dataset cannot be downloaded, verified or unpacked."""


def esc50_url() -> str:
    """The address to download from: the owner's mirror ($AUDIOCLF_ESC50_MIRROR) or the official one."""
    return os.environ.get(MIRROR_ENV, "").strip() or ESC50_URL


def check_url(url: str, any_url: bool = False) -> str:
    """`url` if it may be fetched: http(s) only, and (unless `any_url`, for the CLI whose user owns
    the machine) only the official address or the configured mirror; else DownloadError."""
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise DownloadError(f"Refused to download {url!r}: only http and https addresses are fetched")
    allowed = {ESC50_URL, os.environ.get(MIRROR_ENV, "").strip()} - {""}
    if not any_url and url not in allowed:
        raise DownloadError(f"Refused to download {url!r}: the allowed addresses are {', '.join(sorted(allowed))} "
                            f"(the server's owner can set a mirror with ${MIRROR_ENV})")
    return url


def _on_this_network(host: str | None) -> bool:
    """True for a missing host, localhost, or a loopback, private, link-local or unspecified IP."""
    if not host or host.lower() == "localhost" or host.lower().endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_unspecified


class _SafeRedirect(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to http(s), and onto this machine or its network only from there."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D102
        new = urllib.parse.urlsplit(newurl)
        if new.scheme.lower() not in ("http", "https") or (
                _on_this_network(new.hostname) and not _on_this_network(urllib.parse.urlsplit(req.full_url).hostname)):
            raise urllib.error.HTTPError(req.full_url, code, f"redirect to {newurl!r} refused", headers, fp)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _is_complete(folder: Path) -> bool:
    """Return True if ``folder`` looks like a finished ESC-50 dataset."""
    return folder.joinpath(*_META_CSV).is_file() and (folder / _AUDIO_DIR).is_dir()


def _remove(path: Path | None) -> None:
    """Best-effort removal of a temp file or directory."""
    if path is None:
        return
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    except OSError:
        pass


def _parse_length(value: str | None) -> int | None:
    """Parse a Content-Length header; None when absent or malformed."""
    if value is None:
        return None
    try:
        length = int(value.strip())
    except ValueError:
        return None
    return length if length >= 0 else None


def _fetch(
    url: str,
    target: Path,
    progress: ProgressCallback | None,
    show_bar: bool,
    timeout: float,
) -> int:
    """Stream ``url`` into ``target``; return the number of bytes written."""
    opener = urllib.request.build_opener(_SafeRedirect)  # honours *_proxy env vars at call time
    request = urllib.request.Request(url, headers={"User-Agent": "audioclf-downloader"})
    try:
        response = opener.open(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        raise DownloadError(f"Download of {url} failed: HTTP {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        raise DownloadError(f"Download of {url} failed: {exc.reason}") from exc

    with response:
        total = _parse_length(response.headers.get("Content-Length"))
        done = 0
        with open(target, "wb") as fh, tqdm(
            total=total,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc="ESC-50",
            disable=not show_bar,
        ) as bar:
            while True:
                chunk = response.read(CHUNK_SIZE)
                if not chunk:
                    break
                fh.write(chunk)
                done += len(chunk)
                bar.update(len(chunk))
                if progress is not None:
                    progress(done, total)
    if total is not None and done != total:
        raise DownloadError(
            f"Download of {url} is incomplete: received {done} of {total} bytes "
            "(connection closed early)"
        )
    return done


def _unsafe_member(name: str) -> bool:
    """True if a zip member name is absolute or escapes the extraction dir."""
    normalized = name.replace("\\", "/")
    if normalized.startswith("/") or (len(normalized) > 1 and normalized[1] == ":"):
        return True
    return ".." in PurePosixPath(normalized).parts


def _check_archive(zf: zipfile.ZipFile, source: str) -> str:
    """Validate CRCs, member paths and layout; return the single top folder name."""
    bad = zf.testzip()
    if bad is not None:
        raise DownloadError(f"Archive from {source} is corrupt: bad CRC for member {bad!r}")

    names = zf.namelist()
    if not names:
        raise DownloadError(f"Archive from {source} is empty")
    for name in names:
        if _unsafe_member(name):
            raise DownloadError(f"Archive from {source} contains an unsafe path: {name!r}")

    tops: set[str] = set()
    for name in names:
        parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
        if not parts:
            continue
        if len(parts) == 1 and not name.endswith("/"):
            raise DownloadError(
                f"Archive from {source} has unexpected layout: file {name!r} at top level"
            )
        tops.add(parts[0])
    if len(tops) != 1:
        raise DownloadError(
            f"Archive from {source} has unexpected layout: expected exactly one top "
            f"folder, found {sorted(tops)}"
        )
    top = tops.pop()
    csv_name = "/".join((top, *_META_CSV))
    if csv_name not in names:
        raise DownloadError(f"Archive from {source} has unexpected layout: missing {csv_name}")
    audio_prefix = f"{top}/{_AUDIO_DIR}/"
    if not any(n.startswith(audio_prefix) and n != audio_prefix for n in names):
        raise DownloadError(
            f"Archive from {source} has unexpected layout: missing or empty {audio_prefix}"
        )
    return top


def download_esc50(
    dest: str | Path,
    url: str | None = None,
    progress: ProgressCallback | None = None,
    show_bar: bool = True,
    timeout: float = 60,
    any_url: bool = False,
) -> Path:
    """Download ESC-50 into ``dest/esc50`` and return that folder.

    If ``dest/esc50/meta/esc50.csv`` already exists nothing is downloaded.
    ``url`` defaults to :func:`esc50_url`; any other address is refused (see :func:`check_url`)
    unless ``any_url``, which only the command line passes (for ``--url``).
    ``progress(bytes_done, total_or_None)`` is called after every chunk.
    On any failure all temporary files are removed and :class:`DownloadError`
    is raised; ``KeyboardInterrupt`` (and other non-``Exception`` signals) are
    re-raised unchanged after cleanup.
    """
    dest = Path(dest)
    final = dest / DATASET_DIRNAME
    if final.joinpath(*_META_CSV).is_file():
        return final
    if final.exists() or final.is_symlink():
        raise DownloadError(
            f"{final} exists but is not a complete ESC-50 dataset "
            f"(no {'/'.join(_META_CSV)}); remove it and retry"
        )
    url = check_url(url or esc50_url(), any_url=any_url)

    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"Cannot create destination folder {dest}: {exc}") from exc

    tmp_zip: Path | None = None
    tmp_dir: Path | None = None
    try:
        fd, name = tempfile.mkstemp(prefix=".esc50-download-", suffix=".zip.part", dir=dest)
        os.close(fd)
        tmp_zip = Path(name)

        _fetch(url, tmp_zip, progress, show_bar, timeout)

        tmp_dir = Path(tempfile.mkdtemp(prefix=".esc50-extract-", dir=dest))
        try:
            with zipfile.ZipFile(tmp_zip) as zf:
                top = _check_archive(zf, url)
                zf.extractall(tmp_dir)
        except zipfile.BadZipFile as exc:
            raise DownloadError(f"Download from {url} is not a valid zip archive: {exc}") from exc

        extracted = tmp_dir / top
        if not _is_complete(extracted):
            raise DownloadError(f"Extraction of {url} did not produce a complete dataset")
        try:
            os.rename(extracted, final)
        except OSError as exc:
            if _is_complete(final):  # someone else finished concurrently
                return final
            raise DownloadError(f"Cannot move extracted dataset to {final}: {exc}") from exc
        return final
    except DownloadError:
        raise
    except (OSError, http.client.HTTPException, zipfile.LargeZipFile, EOFError) as exc:
        raise DownloadError(f"Download of {url} into {dest} failed: {exc!r}") from exc
    except Exception as exc:
        raise DownloadError(f"Download of {url} into {dest} failed unexpectedly: {exc!r}") from exc
    finally:
        # Runs for every outcome, including KeyboardInterrupt (which then propagates).
        _remove(tmp_zip)
        _remove(tmp_dir)
