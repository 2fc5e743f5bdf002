"""A dataset source's files as one listing, whether they sit in a folder or in a tar archive.

Archives are read whole into memory: nothing is extracted to disk, so member names can never
point outside the archive.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from autocompress.data._errors import reason
from autocompress.errors import UserError

TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
_COMPRESSIONS = ((b"\x1f\x8b", gzip.decompress), (b"BZh", bz2.decompress), (b"\xfd7zXZ\x00", lzma.decompress))


def is_tar_name(path: Path) -> bool:
    """Whether ``path``'s name ends like a tar archive."""
    return path.name.lower().endswith(TAR_SUFFIXES)


def _decompress(data: bytes) -> bytes:
    """The tar bytes inside a gzip, bzip2 or xz file (decompressing in memory is much faster than
    letting tarfile seek through the compressed stream member by member); plain tar unchanged."""
    for magic, decompress in _COMPRESSIONS:
        if data.startswith(magic):
            return decompress(data)
    return data


def _clean(name: str) -> str | None:
    """A member name as a relative posix path; None for hidden, macOS or escaping entries."""
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if not parts or any(p == ".." or p.startswith(".") or p == "__MACOSX" for p in parts):
        return None
    return "/".join(parts)


@dataclass
class FileTree:
    """The files (relative posix path -> bytes, or the file on disk) and folders of a source."""

    where: Path
    files: dict[str, bytes | Path] = field(default_factory=dict)
    dirs: set[str] = field(default_factory=set)

    @classmethod
    def open(cls, path: Path) -> FileTree:
        """List a folder recursively, or read every member of a tar archive."""
        tree = cls(path)
        if path.is_dir():
            tree._walk_folder()
        else:
            tree._read_tar()
        for name in tree.files:
            parts = name.split("/")[:-1]
            tree.dirs.update("/".join(parts[: i + 1]) for i in range(len(parts)))
        return tree

    def _walk_folder(self) -> None:
        for dirpath, dirnames, filenames in os.walk(self.where):
            dirnames[:] = [d for d in dirnames if _clean(d)]
            rel = Path(dirpath).relative_to(self.where).as_posix()
            prefix = "" if rel == "." else rel + "/"
            self.dirs.update(prefix + d for d in dirnames)
            self.files.update({prefix + f: Path(dirpath, f) for f in filenames if _clean(f)})

    def _read_tar(self) -> None:
        try:
            with tarfile.open(fileobj=io.BytesIO(_decompress(self.where.read_bytes())), mode="r:") as tar:
                for member in tar:
                    name = _clean(member.name)
                    if name is None:
                        continue
                    if member.isdir():
                        self.dirs.add(name)
                    elif member.isfile():
                        self.files[name] = tar.extractfile(member).read()
        except (tarfile.TarError, OSError, EOFError, ValueError, zlib.error, lzma.LZMAError) as e:
            raise UserError(
                f"{self.where} is not a readable tar archive ({reason(e)}); re-download or re-create it"
            ) from e

    def describe(self, rel: str) -> str:
        """How to name one file of the tree in a message."""
        return str(self.where / rel) if self.where.is_dir() else f"{self.where} (member {rel})"

    def read(self, rel: str) -> bytes:
        """The bytes of one file of the tree."""
        content = self.files[rel]
        if isinstance(content, bytes):
            return content
        try:
            return content.read_bytes()
        except OSError as e:
            raise UserError(f"cannot read {content} ({reason(e)}); check its permissions") from e

    def children(self, folder: str) -> tuple[list[str], list[str]]:
        """Sorted names of the sub-folders and files directly inside ``folder`` ("" is the top)."""
        prefix = folder + "/" if folder else ""

        def direct(names):
            return sorted(n[len(prefix) :] for n in names if n.startswith(prefix) and "/" not in n[len(prefix) :])

        return direct(self.dirs), direct(self.files)

    def root(self) -> str:
        """The dataset's top folder: "", or the one folder the tree holds when that is not train/ or test/."""
        dirs, files = self.children("")
        return dirs[0] if len(dirs) == 1 and not files and dirs[0] not in ("train", "test") else ""
