"""The log folder (``<data_dir>/logs``): ``mirror_dispatch.log``, ``trade_log.jsonl`` and
``vanta.log``, JSON lines, buffered in memory and rotated daily. See :mod:`.files`."""

from vanta.adapters.logfiles.files import DailyFile, FileJournal, FolderHandler, LogFolder

__all__ = ["DailyFile", "FileJournal", "FolderHandler", "LogFolder"]
