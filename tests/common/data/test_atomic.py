from __future__ import annotations

from pathlib import Path

import pytest

from common.data.atomic import write_folder_atomically


def test_failure_leaves_previous_content_and_no_temporaries(tmp_path: Path):
    root = tmp_path / "sample"
    write_folder_atomically(root, lambda d: (d / "a.txt").write_text("old"))

    def broken(folder: Path) -> None:
        (folder / "a.txt").write_text("new")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        write_folder_atomically(root, broken, overwrite=True)
    assert (root / "a.txt").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["sample"]
    write_folder_atomically(root, lambda d: (d / "b.txt").write_text("new"), overwrite=True)
    assert [p.name for p in root.iterdir()] == ["b.txt"] and [p.name for p in tmp_path.iterdir()] == ["sample"]
