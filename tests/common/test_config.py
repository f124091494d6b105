from __future__ import annotations

from pathlib import Path

import pytest
import torch

from common.config import (
    as_flag,
    bundle_root,
    choose,
    install_error_summary,
    repository_root,
    require_checkpoint,
    root_cause,
)


def test_bundle_root_finds_bundle_from_repository_and_from_elsewhere(monkeypatch, tmp_path: Path):
    name = "synovial_ultrasound_segmentation"
    expected = repository_root() / "bundles" / name
    monkeypatch.chdir(repository_root())
    assert Path(bundle_root(name)) == expected
    monkeypatch.chdir(tmp_path)  # falls back to the checkout this package came from
    assert Path(bundle_root(name)) == expected


def test_bundle_root_prefers_environment(monkeypatch, tmp_path: Path):
    (tmp_path / "mine" / "configs").mkdir(parents=True)
    (tmp_path / "mine" / "configs" / "metadata.json").write_text("{}")
    monkeypatch.setenv("MONAI_BUNDLES_ROOT", str(tmp_path))
    assert Path(bundle_root("mine")) == tmp_path / "mine"


def test_bundle_root_unknown_name_says_what_to_do():
    with pytest.raises(FileNotFoundError, match="--bundle_root"):
        bundle_root("no_such_bundle_segmentation")


def test_require_checkpoint(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="train first"):
        require_checkpoint(tmp_path / "models" / "model.pt")
    (tmp_path / "model.pt").write_bytes(b"")
    with pytest.raises(ValueError, match=r"model\.pt: the checkpoint is empty"):
        require_checkpoint(tmp_path / "model.pt")
    (tmp_path / "model.pt").write_bytes(b"x")
    with pytest.raises(ValueError, match=r"model\.pt: cannot read the checkpoint"):
        require_checkpoint(tmp_path / "model.pt")
    torch.save({"w": torch.zeros(1)}, tmp_path / "model.pt")
    assert require_checkpoint(tmp_path / "model.pt") == str(tmp_path / "model.pt")


def test_choose_lists_allowed_values():
    assert choose({"a": 1, "b": 2}, "b", "arch") == 2
    with pytest.raises(ValueError, match=r"arch must be one of \['a', 'b'\], got 'c'"):
        choose({"a": 1, "b": 2}, "c", "arch")


def test_bundle_root_is_the_folder_of_the_config_on_the_command_line(monkeypatch, tmp_path: Path):
    copy = tmp_path / "elsewhere" / "my_copy"
    (copy / "configs").mkdir(parents=True)
    (copy / "configs" / "metadata.json").write_text("{}")
    config = str(copy / "configs" / "inference.yaml")
    monkeypatch.chdir(repository_root())  # the repository's own bundle would be found from here
    monkeypatch.setenv("MONAI_BUNDLES_ROOT", str(repository_root() / "bundles"))
    for argv in (["--config_file", config], [f"--config_file={config}"], ["--config_file", repr([config, config])]):
        monkeypatch.setattr("sys.argv", ["monai.bundle", "run", *argv])
        assert Path(bundle_root("synovial_ultrasound_segmentation")) == copy
    monkeypatch.setattr("sys.argv", ["monai.bundle", "run", "--config_file", str(tmp_path / "loose.yaml")])
    assert Path(bundle_root("synovial_ultrasound_segmentation")).parent == repository_root() / "bundles"


def test_error_summary_repeats_the_config_error_last():
    import subprocess
    import sys

    code = (
        "import common\n"
        "try:\n    raise ValueError('/data/x.png: cannot read the image')\n"
        "except ValueError as e:\n    raise RuntimeError('Failed to evaluate ConfigExpression: ...') from e\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=repository_root())
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == "Error: /data/x.png: cannot read the image  (ValueError)"
    assert root_cause(RuntimeError("a")).args == ("a",)
    install_error_summary()  # idempotent


def test_as_flag_reads_command_line_booleans():
    assert [as_flag(v, "--resume") for v in (True, 0, "false", "False", " YES ", "off", "1")] == [
        True, False, False, False, True, False, True
    ]  # fmt: skip
    with pytest.raises(ValueError, match="--resume must be true or false, got 'maybe'"):
        as_flag("maybe", "--resume")
