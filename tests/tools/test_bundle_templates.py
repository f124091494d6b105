"""tools/bundle_templates.py: every bundle's repeated parts match their one source, and drift is caught."""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import bundle_templates  # noqa: E402

BUNDLE = "synovial_ultrasound_segmentation"


def test_every_bundle_matches_the_templates():
    drifts = bundle_templates.check(ROOT / "bundles")
    report = "\n".join(str(drift) for drift in drifts)
    assert not drifts, f"bundles drift from tools/bundle_templates.py (repair: its --write)\n{report}"


def test_check_command_passes_on_the_repository(capsys):
    assert bundle_templates.main(["--check"]) == 0
    assert "bundles match" in capsys.readouterr().out


@pytest.fixture
def bundles_copy(tmp_path: Path) -> Path:
    """A bundles folder holding a copy of one bundle's repeated files (no data, no checkpoints)."""
    source = ROOT / "bundles" / BUNDLE
    target = tmp_path / "bundles" / BUNDLE
    shutil.copytree(source / "configs", target / "configs")
    shutil.copy(source / "LICENSE", target / "LICENSE")
    return tmp_path / "bundles"


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{path} no longer holds {old!r}: update the test"
    path.write_text(text.replace(old, new, 1))


def _drift_everywhere(bundle: Path) -> None:
    configs = bundle / "configs"
    _edit(configs / "train.yaml", "log_dir: \"$@bundle_root + '/runs'\"", "log_dir: \"$@bundle_root + '/logs'\"")
    tensorboard = (
        '    - {_target_: common.engines.TensorBoardStatsHandler, log_dir: "@log_dir", iteration_log: false}\n'
    )
    _edit(configs / "train.yaml", tensorboard, tensorboard + "    - {_target_: StatsHandler, name: extra}\n")
    _edit(configs / "multi_gpu_train.yaml", '  - "$common.distributed.finalize()"\n', "")
    _edit(configs / "evaluate.yaml", "output_dir: \"$@bundle_root + '/eval'\"", "output_dir: \"$@bundle_root + '/e'\"")
    _edit(configs / "metadata.json", '"monai_version": "1.6.1"', '"monai_version": "1.5.0"')
    _edit(configs / "logging.conf", "level=INFO", "level=DEBUG")
    (bundle / "LICENSE").write_text((bundle / "LICENSE").read_text() + "extra line\n")


def test_check_reports_each_changed_block_with_its_file(bundles_copy: Path, capsys):
    assert bundle_templates.main(["--check", "--bundles_dir", str(bundles_copy)]) == 0
    capsys.readouterr()
    _drift_everywhere(bundles_copy / BUNDLE)

    assert bundle_templates.main(["--check", "--bundles_dir", str(bundles_copy)]) == 1
    out = capsys.readouterr().out
    expected = {
        "configs/train.yaml: log_dir": "+log_dir: \"$@bundle_root + '/logs'\"",
        "configs/train.yaml: validate#handlers": "+    - {_target_: StatsHandler, name: extra}",
        "configs/multi_gpu_train.yaml: finalize": '-  - "$common.distributed.finalize()"',
        "configs/evaluate.yaml: output_dir": "+output_dir: \"$@bundle_root + '/e'\"",
        "configs/metadata.json: monai_version": '+ "1.5.0"',
        "configs/logging.conf: whole file": "+level=DEBUG",
        f"{BUNDLE}/LICENSE: whole file": "+extra line",
    }
    for where, diff_line in expected.items():
        assert where in out, f"drift of {where} not reported:\n{out}"
        assert diff_line in out, f"diff line {diff_line!r} missing:\n{out}"
    assert len(bundle_templates.check(bundles_copy)) == len(expected)


def test_write_repairs_drift_and_keeps_the_bundle_config(bundles_copy: Path):
    bundle = bundles_copy / BUNDLE
    original = {p.name: p.read_text() for p in (bundle / "configs").iterdir()}
    _drift_everywhere(bundle)
    _edit(bundle / "configs" / "train.yaml", 'ckpt_dir: "', 'ckpt_dir:   "')
    # a changed shared line that carries the bundle's own comment is rewritten and keeps the comment
    _edit(bundle / "configs" / "train.yaml", "resume: true ", "resume: false ")

    assert bundle_templates.main(["--write", "--bundles_dir", str(bundles_copy)]) == 0
    assert bundle_templates.check(bundles_copy) == []
    for name, text in original.items():
        assert (bundle / "configs" / name).read_text() == text, f"--write did not restore {name} exactly"
    assert (bundle / "LICENSE").read_text() == bundle_templates.LICENSE
    assert yaml.safe_load((bundle / "configs" / "train.yaml").read_text())["resume"] is True


def test_a_missing_block_is_reported_and_left_for_a_hand_edit(bundles_copy: Path, capsys):
    train = bundles_copy / BUNDLE / "configs" / "train.yaml"
    _edit(train, "ckpt_dir: \"$@bundle_root + '/models'\"\n", "")

    assert bundle_templates.main(["--write", "--bundles_dir", str(bundles_copy)]) == 1
    assert "needs a hand edit" in capsys.readouterr().err
    drifts = bundle_templates.check(bundles_copy)
    assert [(d.path, d.block) for d in drifts] == [(train, "ckpt_dir")]
    assert drifts[0].diff.startswith("missing")


def test_an_ambiguous_anchor_is_reported(bundles_copy: Path):
    train = bundles_copy / BUNDLE / "configs" / "train.yaml"
    train.write_text(train.read_text() + 'progress: "$sys.stderr.isatty()"\n')
    (drift,) = bundle_templates.check(bundles_copy)
    assert drift.block == "progress" and "ambiguous" in drift.diff


def test_split_comment_keeps_hashes_inside_values():
    assert bundle_templates.split_comment('a: "@train#sampler"   # why') == ('a: "@train#sampler"', "   # why")
    assert bundle_templates.split_comment("b: '# not a comment'") == ("b: '# not a comment'", "")
    assert bundle_templates.split_comment("train#dataloader#shuffle: false") == ("train#dataloader#shuffle: false", "")


def test_metadata_fields_are_shared_by_every_bundle():
    # the template holds only fields every bundle has; a bundle-specific one would belong to the bundle
    for metadata in (ROOT / "bundles").glob("*/configs/metadata.json"):
        fields = json.loads(metadata.read_text())
        assert {k: fields.get(k) for k in bundle_templates.METADATA_FIELDS} == bundle_templates.METADATA_FIELDS


def test_every_template_block_is_valid_yaml():
    for name, blocks in bundle_templates.CONFIG_BLOCKS.items():
        for block in blocks:
            assert yaml.safe_load(textwrap.dedent(block.text)), f"{name}: {block.name} is not YAML"
