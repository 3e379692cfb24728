"""The readers of what the kernel wrote: never a link followed, a FIFO waited on, a pickle
loaded, or an array read beyond what its file holds."""

from __future__ import annotations

import os

import numpy as np
import pytest

from grader.errors import UntrustedDataError
from grader.evaluation.untrusted import read_array, read_tail


def test_an_array_whose_header_its_size_contradicts_is_refused_before_its_data_is_read(tmp_path):
    path = tmp_path / "w000.npy"
    np.save(path, np.zeros((4, 4), "float32"))
    assert read_array(path, 2**20).shape == (4, 4)
    with path.open("r+b") as handle:  # a header that promises far more than the file holds
        handle.truncate(path.stat().st_size - 8)
    with pytest.raises(UntrustedDataError, match=r"its header says \(4, 4\) float32, which its size contradicts"):
        read_array(path, 2**20)
    with pytest.raises(UntrustedDataError, match="larger than 16 bytes"):
        read_array(path, 16)


def test_a_log_is_read_from_its_end_and_a_fifo_or_a_link_in_its_place_is_refused(tmp_path):
    log = tmp_path / "kernel.log"
    log.write_bytes(b"start\n" + b"x" * 100 + b"\nthe end\n")
    assert read_tail(log, 8) == b"the end\n"
    os.remove(log)
    os.mkfifo(log)  # never waited on
    with pytest.raises(UntrustedDataError, match="not a regular file"):
        read_tail(log, 8)
    os.remove(log)
    log.symlink_to("/etc/passwd")
    with pytest.raises(UntrustedDataError, match="cannot be opened as a file"):
        read_tail(log, 8)
