"""Uploaded deliveries: saved as they came (in the request), checked and extracted in the
background job, kept with their batch as evidence, removed by the housekeeping command.

A zip is checked before anything is extracted — member count, total uncompressed size,
compression ratio (zip bomb), names (absolute, `..`, links, NUL, `.`; containment by resolved
path), GBK or UTF-8 names — and extraction counts the bytes it writes, so a member whose
header lies about its size is stopped at the limit too."""
from __future__ import annotations

import os
import secrets
import shutil
import stat
import unicodedata
import zipfile
from pathlib import Path, PurePosixPath

from flask import current_app
from flask_babel import lazy_gettext as _l

from app.errors import DomainError, Rule

SRC = _l("网络安全法 第二十一条 (security of network data); platform upload policy (settings "
         "IMPORT_ZIP_*)")
NOT_A_ZIP = Rule("import.zip_invalid", _l("The upload %(name)s is not a readable zip file."), SRC)
TOO_MANY = Rule("import.zip_members",
                _l("The zip holds %(n)s members; at most %(limit)s are accepted."), SRC, 413)
TOO_BIG = Rule("import.zip_size",
               _l("The zip expands to %(size)s MB; at most %(limit)s MB are accepted."), SRC, 413)
BOMB = Rule("import.zip_ratio",
            _l("Member %(name)s is compressed %(ratio)s:1 (at most %(limit)s:1 is accepted): "
               "this looks like a zip bomb and nothing was extracted."), SRC, 413)
BAD_NAME = Rule("import.zip_name",
                _l("The zip member %(name)s is refused (%(why)s); nothing was extracted."), SRC)


def upload_root() -> Path:
    root = Path(current_app.config.get("IMPORT_UPLOAD_DIR")
                or Path(current_app.instance_path) / "uploads")
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    return root


def save(storage) -> Path:
    """Save an uploaded file, as it came, in a fresh folder of the upload area."""
    folder = upload_root() / secrets.token_hex(8)
    folder.mkdir(mode=0o700)
    name = Path((storage.filename or "delivery").replace("\\", "/")).name
    name = "".join(ch for ch in name if ch.isprintable() and ch not in "/\x00") or "delivery"
    if name in (".", ".."):
        name = "delivery"
    target = folder / name[-150:]
    storage.save(target)
    return target


def _member_name(info: zipfile.ZipInfo) -> str:
    """The member's name: UTF-8 when flagged, else GBK (zips made on Chinese Windows), else
    the cp437 text zipfile gave."""
    name = info.filename
    if not info.flag_bits & 0x800:
        try:
            name = name.encode("cp437").decode("gbk")
        except (UnicodeEncodeError, UnicodeDecodeError):
            pass
    return name


def check(path: Path) -> list[tuple[zipfile.ZipInfo, str]]:
    """Check a zip before extracting it; return its members with their decoded names."""
    cfg = current_app.config
    max_members = int(cfg.get("IMPORT_ZIP_MAX_MEMBERS", 2000))
    max_total = int(cfg.get("IMPORT_ZIP_MAX_TOTAL_MB", 1024)) * 1024 ** 2
    max_ratio = float(cfg.get("IMPORT_ZIP_MAX_RATIO", 200))
    try:
        z = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError):
        raise DomainError(NOT_A_ZIP, name=path.name) from None
    with z:
        infos = z.infolist()
    if len(infos) > max_members:
        raise DomainError(TOO_MANY, n=len(infos), limit=max_members)
    total = sum(i.file_size for i in infos)
    if total > max_total:
        raise DomainError(TOO_BIG, size=total // 1024 ** 2, limit=max_total // 1024 ** 2)
    out = []
    seen: dict[str, str] = {}
    for info in infos:
        name = _member_name(info)
        # Two members that one folder cannot tell apart (the same name, or names differing
        # only in case or Unicode form, as on Windows and macOS): which one is meant is unknown.
        key = unicodedata.normalize("NFC", name.replace("\\", "/").rstrip("/")).casefold()
        if key in seen:
            raise DomainError(BAD_NAME, name=name[:100],
                              why=f"the zip also holds {seen[key][:100]}")
        seen[key] = name
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > 1024 ** 2 and ratio > max_ratio:
            raise DomainError(BOMB, name=name[:100], ratio=int(ratio), limit=int(max_ratio))
        why = _bad_name(name, info)
        if why:
            raise DomainError(BAD_NAME, name=name[:100] or "''", why=why)
        out.append((info, name))
    return out


def _bad_name(name: str, info: zipfile.ZipInfo) -> str | None:
    if not name or any(ord(ch) < 32 for ch in name):
        return "empty or control characters"
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "absolute path"
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if ".." in parts:
        return "'..' leaves the folder"
    if not parts or all(p in (".", "") for p in parts):
        return "names no file"
    mode = (info.external_attr >> 16) & 0xFFFF
    kind = stat.S_IFMT(mode)
    if kind == stat.S_IFLNK:
        return "a link"
    if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
        return "not a plain file"
    return None


def extract(path: Path) -> Path:
    """Check and extract a zip next to it (into `delivery/`); return that folder."""
    members = check(path)
    limit = int(current_app.config.get("IMPORT_ZIP_MAX_TOTAL_MB", 1024)) * 1024 ** 2
    out = path.parent / "delivery"
    out.mkdir(exist_ok=True, mode=0o700)
    root = out.resolve()
    written = 0
    try:
        with zipfile.ZipFile(path) as z:
            for info, name in members:
                dest = (out / name.replace("\\", "/")).resolve()
                if not dest.is_relative_to(root) or dest == root:
                    raise DomainError(BAD_NAME, name=name[:100], why="outside the folder")
                if info.is_dir():
                    dest.mkdir(parents=True, exist_ok=True)
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                with z.open(info) as src, os.fdopen(fd, "wb") as dst:
                    while chunk := src.read(1024 * 1024):
                        written += len(chunk)
                        if written > limit:  # the header lied
                            raise DomainError(TOO_BIG, size=written // 1024 ** 2,
                                              limit=limit // 1024 ** 2)
                        dst.write(chunk)
    except DomainError:
        shutil.rmtree(out, ignore_errors=True)
        raise
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as e:
        shutil.rmtree(out, ignore_errors=True)
        raise DomainError(NOT_A_ZIP, name=f"{path.name} ({type(e).__name__})") from None
    return out


def prepare(path: Path) -> Path:
    """What the importer reads: the extracted folder of a zip, or the file itself."""
    if path.suffix.lower() == ".zip":
        return extract(path)
    return path


def discard_extracted(path: Path) -> None:
    """Drop the extracted copy (the upload itself stays as evidence)."""
    if path.suffix.lower() == ".zip":
        shutil.rmtree(path.parent / "delivery", ignore_errors=True)
