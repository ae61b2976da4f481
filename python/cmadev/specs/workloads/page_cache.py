"""The workloads that go through the page cache of a file: :class:`PageCacheReader` (reads) and
:class:`Writer` (writes, dirty pages, writeback).

Two kinds of one family, apart from the others: their sizes are file sizes (bounded by
:data:`~cmadev.specs.workloads.base.FILE_PER_RAM`), not memory held.

This module has no ``from __future__ import annotations`` (see :mod:`cmadev.specs.base`).
"""

from typing import Any, Literal, Optional

from pydantic import Field, field_validator

from cmadev.specs.base import Name
from cmadev.specs.workloads.base import WorkloadBase, _positive_rate, _positive_size
from cmadev.units import PAGE_SIZE, Rate, Size, pages_for


class PageCacheReader(WorkloadBase):
    """Reads files through the page cache, at random over its working set or streaming.

    A page read for the first time comes from storage; a resident page is a hit; a page read
    again after reclaim dropped it is a *refault* (counted, with its storage read). The rate
    is a ceiling: reads that miss wait for storage, so a thrashing reader reads less.
    """

    kind: Literal["page_cache_reader"] = Field(
        "page_cache_reader", description="The workload kind."
    )
    _file_fields = ("working_set",)
    _rate_fields = ("rate",)
    name: Name = Field("reader", description=WorkloadBase.model_fields["name"].description)
    working_set: Size = Field(
        description="Size of the file set it reads (e.g. '900MiB'); rounded up to pages."
    )
    rate: Rate = Field(
        description="Read throughput it aims at (e.g. '200MiB/s'); misses slow it down."
    )
    zipf: float = Field(
        0.0,
        ge=0,
        le=10,
        description="Access skew over the working set's pages: Zipf exponent (0: uniform, 1: "
        "classic Zipf, higher: a smaller hot set). Ignored when sequential.",
    )
    sequential: bool = Field(
        False, description="Stream through the files in order (and around) instead."
    )

    @field_validator("working_set")
    @classmethod
    def _working_set_positive(cls, value: int) -> int:
        return _positive_size(value, "working_set", "900MiB")

    @field_validator("rate")
    @classmethod
    def _rate_positive(cls, value: int) -> int:
        return int(_positive_rate(value, "rate", "200MiB/s"))

    def _engine_fields(self) -> dict[str, Any]:
        return {
            "file_pages": pages_for(self.working_set),
            "rate_pages_per_s": self.rate / PAGE_SIZE,
            "zipf_s": self.zipf,
            "sequential": self.sequential,
        }


class Writer(WorkloadBase):
    """Writes whole pages of a file in order (and around): dirty page cache.

    Dirty pages are written back by the flusher after ``dirty_expire``, by reclaim, by the
    writer itself when dirty memory passes ``dirty_ratio`` (throttling), or at each ``fsync``.
    A page under writeback cannot be migrated until the write completes.
    """

    kind: Literal["writer"] = Field("writer", description="The workload kind.")
    _file_fields = ("file_size",)
    _rate_fields = ("rate",)
    name: Name = Field("writer", description=WorkloadBase.model_fields["name"].description)
    file_size: Size = Field(description="Size of the file it rewrites (e.g. '64MiB').")
    rate: Rate = Field(description="Write throughput it aims at (e.g. '20MiB/s').")
    fsync_every: Optional[Size] = Field(
        None,
        description="fsync after writing this much (e.g. '1MiB'): write back its dirty pages "
        "and wait. Null: leave writeback to the flusher.",
    )

    @field_validator("file_size")
    @classmethod
    def _file_size_positive(cls, value: int) -> int:
        return _positive_size(value, "file_size", "64MiB")

    @field_validator("rate")
    @classmethod
    def _rate_positive(cls, value: int) -> int:
        return int(_positive_rate(value, "rate", "20MiB/s"))

    @field_validator("fsync_every")
    @classmethod
    def _fsync_positive(cls, value: Optional[int]) -> Optional[int]:
        if value is not None:
            _positive_size(value, "fsync_every", "1MiB")
        return value

    def _engine_fields(self) -> dict[str, Any]:
        every = self.fsync_every
        return {
            "file_pages": pages_for(self.file_size),
            "rate_pages_per_s": self.rate / PAGE_SIZE,
            "fsync_every_pages": None if every is None else pages_for(every),
        }


__all__ = ["PageCacheReader", "Writer"]
