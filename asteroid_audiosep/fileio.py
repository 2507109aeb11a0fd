"""Writing files so that a reader never sees half a file, and permissions follow the umask.

Every file the package and the recipe create goes through :func:`atomic_write` (or
:func:`atomic_dir` for a folder): the content is written to a temporary name in the same folder
(same filesystem, so the final ``os.replace`` is atomic), given the mode a plain ``open()`` would
give it under the process umask (``0644`` under ``022``, ``0640`` under ``027``), then renamed
over the target. On any failure the temporary is removed and the target is left as it was.
"""
import contextlib
import errno
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator, Optional, Union

PathLike = Union[str, os.PathLike]


def current_umask() -> int:
    """The process umask (read without changing it for other threads for longer than needed)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def default_mode(directory: bool = False) -> int:
    """The mode ``open()``/``mkdir()`` would give a new file/folder under the current umask."""
    return (0o777 if directory else 0o666) & ~current_umask()


@contextlib.contextmanager
def atomic_write(path: PathLike, mode: str = "w", **open_kwargs) -> Iterator:
    """Write ``path`` through a temporary file and a rename.

    With ``mode`` ``"w"``/``"wb"`` (or any ``open`` mode) the context yields the open file object;
    with ``mode=None`` it yields the temporary *path* (for writers that want a file name, such as
    ``torch.save``, ``soundfile.write`` or ``DataFrame.to_csv``). The temporary keeps the target's
    suffix so that format-sniffing writers pick the right format.

        with atomic_write(out / "summary.csv", mode=None) as tmp:
            frame.to_csv(tmp, index=False)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    try:
        os.chmod(tmp, default_mode())
        if mode is None:
            yield tmp
        else:
            with open(tmp, mode, **open_kwargs) as handle:
                yield handle
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_text_atomic(path: PathLike, text: str) -> Path:
    """``Path.write_text`` through :func:`atomic_write`."""
    with atomic_write(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    return Path(path)


@contextlib.contextmanager
def atomic_dir(path: PathLike) -> Iterator[Path]:
    """Build a folder under a temporary name beside ``path`` and rename it into place.

    ``path`` must not exist yet (a finished folder is never replaced); on failure the partial
    folder is removed.
    """
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path} already exists")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        os.chmod(tmp, default_mode(directory=True))
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


#: Free space below which a failed write is reported as a full disk (libsndfile and other C
#: writers report ENOSPC as a bare "System error").
NEARLY_FULL_BYTES = 1 << 20


def free_bytes(folder: PathLike) -> Optional[int]:
    """The bytes an unprivileged writer may still use on ``folder``'s filesystem (None: unknown)."""
    with contextlib.suppress(OSError):
        stat = os.statvfs(folder)
        return stat.f_bavail * stat.f_frsize
    return None


def full_disk_error(path: PathLike, error: BaseException) -> Optional[str]:
    """"no space left on device" (or "disk quota exceeded") with the path and what to do, when
    that is why writing ``path`` failed; else None.

    Call it before removing the partial file (the free space is measured then).
    """
    code = getattr(error, "errno", None)
    if code == getattr(errno, "EDQUOT", None):
        return f"disk quota exceeded: cannot write {path}: free space or raise the quota, then rerun"
    free = free_bytes(Path(path).parent)
    if code == errno.ENOSPC or (free is not None and free < NEARLY_FULL_BYTES):
        left = f" ({free // 1024} KiB free there)" if free is not None else ""
        return (f"no space left on device: cannot write {path}{left}: free space or choose another output "
                "folder, then rerun (finished files are kept)")
    return None


def write_error(path: PathLike, error: BaseException) -> str:
    """The message for a failed write of ``path``: :func:`full_disk_error`, else the error."""
    return full_disk_error(path, error) or f"cannot write {path}: {error}"
