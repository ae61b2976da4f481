"""Background workloads: the load a device's contiguous allocations compete with.

Each class describes one kind of load in human units (``"900MiB"``, ``"200MiB/s"``,
``"2ms"``); the Rust engine runs it inside its event loop, page by page, with no Python call
per page (:meth:`cmadev.Machine.start`). Every workload is an *owner*: its name is attached to
each page it maps and each pin it takes, which is how a report names what blocked a device.

=================== ==========================================================================
kind                what it reproduces
=================== ==========================================================================
page_cache_reader   ``read()`` through the page cache: hits, first reads, refaults after
                    reclaim; random (optionally Zipf-skewed) or streaming
writer              ``write()`` of whole pages: dirty page cache, writeback, ``fsync``
anon_hog            anonymous memory growing to a size, re-touched at random
direct_io           ``O_DIRECT`` I/O: short ``pin_user_pages`` pins (FOLL_PIN) on its buffer
longterm_pinner     RDMA / vfio / io_uring fixed buffers: FOLL_LONGTERM pins
fs_mount            a mounted filesystem's superblock and group-descriptor buffers, held for
                    the life of the mount (movable block-device page cache, the ext4 case)
kernel_alloc        slab-like unmovable kernel allocations with a lifetime
build               a parallel build (``make -jN``): short processes, each faulting a heap,
                    reading a source tree and writing an object file, then exiting; CPU-bound,
                    sharing the CPUs with the kernel's work
tmpfs_file          a file on tmpfs written and read: shmem pages, page cache that only swap
                    can take
=================== ==========================================================================

Every model is frozen with ``extra="forbid"``; :meth:`WorkloadBase.to_engine` gives the JSON
the engine takes (sizes in pages, rates per second, times in nanoseconds). In a scenario file
the ``kind`` field says which class a workload is (:data:`Workload`, :func:`load_workload`).

The package holds one module per family of kinds (:mod:`~cmadev.specs.workloads.page_cache`,
:mod:`~cmadev.specs.workloads.swap_backed`, :mod:`~cmadev.specs.workloads.pins`,
:mod:`~cmadev.specs.workloads.kernel_held`, :mod:`~cmadev.specs.workloads.build`), their base
(:mod:`~cmadev.specs.workloads.base`) and the registry of kinds
(:mod:`~cmadev.specs.workloads.kinds`); every name is importable from here, as it was when
they were one module. None of them has ``from __future__ import annotations`` (see
:mod:`cmadev.specs.base`).
"""

from cmadev.specs.workloads.base import FILE_PER_RAM as FILE_PER_RAM
from cmadev.specs.workloads.base import MAX_EVENT_RATE as MAX_EVENT_RATE
from cmadev.specs.workloads.base import WorkloadBase
from cmadev.specs.workloads.build import Build
from cmadev.specs.workloads.kernel_held import FsMount, KernelAlloc
from cmadev.specs.workloads.kinds import (
    WORKLOAD_CLASSES,
    WORKLOAD_KINDS,
    Workload,
    load_workload,
    validate_workload,
)
from cmadev.specs.workloads.page_cache import PageCacheReader, Writer
from cmadev.specs.workloads.pins import DirectIO, LongtermPinner
from cmadev.specs.workloads.swap_backed import AnonHog, TmpfsFile

__all__ = [
    "WORKLOAD_CLASSES",
    "WORKLOAD_KINDS",
    "AnonHog",
    "Build",
    "DirectIO",
    "FsMount",
    "KernelAlloc",
    "LongtermPinner",
    "PageCacheReader",
    "TmpfsFile",
    "Workload",
    "WorkloadBase",
    "Writer",
    "load_workload",
    "validate_workload",
]
