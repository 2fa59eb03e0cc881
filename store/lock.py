"""The writer lock: an exclusive flock on a file beside the store folder, held by the one materialiser.

RocksDB's own LOCK file lies inside the store folder, so it stops guarding the store once the
folder is deleted. A second writer would then create a new folder with a new LOCK and succeed.
The writer lock file ``<store.path>.lock`` lies next to the folder and is never deleted, so it
guards ``store.path`` itself, also across a rebuild. The kernel releases a flock when its process exits,
so a killed materialiser leaves no stale lock behind.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
from pathlib import Path

from store.errors import StoreLockedError

logger = logging.getLogger(__name__)


def writer_lock_path(store_path: Path) -> Path:
    """Return the writer lock file of the store at ``store_path``: ``<store_path>.lock``."""
    return store_path.with_name(f"{store_path.name}.lock")


class WriterLock:
    """An exclusive flock on the writer lock file of one store, held until ``release``.

    The file contains the process id of the holder, for the error message of the next writer.
    flock locks belong to an open file description, so a second ``WriterLock`` on the same store
    fails also within the same process.
    """

    def __init__(self, store_path: Path) -> None:
        """Take the lock, creating the lock file and its folder if needed.

        Raises:
            StoreLockedError: if another writer holds the lock. The message names the lock file and
                the holder's process id.
        """
        self.path = writer_lock_path(store_path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Python opens the descriptor non-inheritable, so child processes do not keep the lock.
        descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(descriptor)
            if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            raise StoreLockedError(
                f"the feature store at {store_path} is locked: another materialiser is writing it "
                f"({_describe_holder(self.path)} holds the writer lock {self.path}). Stop that materialiser, "
                "or set store.path to another folder."
            ) from error
        self._descriptor: int | None = descriptor
        os.ftruncate(descriptor, 0)
        os.write(descriptor, f"{os.getpid()}\n".encode("ascii"))

    def release(self) -> None:
        """Release the lock and close the file, which stays in place. Calling it again does nothing."""
        if self._descriptor is None:
            return
        descriptor, self._descriptor = self._descriptor, None
        # Closing the only descriptor of the open file description releases the flock. The file
        # keeps the old process id, which the next holder overwrites.
        os.close(descriptor)


def _describe_holder(lock_path: Path) -> str:
    try:
        text = lock_path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        text = ""
    return f"process {text}" if text.isdigit() else "a process whose id the file does not record"
