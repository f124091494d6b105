"""One source for the parts every bundle repeats verbatim: LICENSE, logging.conf, shared config blocks, metadata.

    python tools/bundle_templates.py --check   # list every drift (file, block, diff); exit 1 if there is any
    python tools/bundle_templates.py --write   # rewrite the repeated parts of every bundle from the templates

MONAI Label reads `train.*` and `inference.*` on their own and never merges files, so each bundle's configs stay
standalone; this module is where their repeated parts are defined once. A config block is matched line by line
after dropping trailing YAML comments (a bundle may explain a shared line in its own words); `--write` keeps those
comments. Blocks are found by their first line (the anchor), so each anchor must occur once per file.
`tests/tools/test_bundle_templates.py` runs `--check`, so a bundle that drifts fails the test suite.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# configs/logging.conf of every bundle: model-zoo's logging config (passes MONAI 1.6's logging.conf checks)
LOGGING_CONF = """\
[loggers]
keys=root

[handlers]
keys=consoleHandler

[formatters]
keys=fullFormatter

[logger_root]
level=INFO
handlers=consoleHandler

[handler_consoleHandler]
class=StreamHandler
level=INFO
formatter=fullFormatter
args=(sys.stdout,)

[formatter_fullFormatter]
format=%(asctime)s - %(name)s - %(levelname)s - %(message)s
"""

# LICENSE of every bundle: Apache-2.0 for the code (data licences are in docs/data_license.txt)
LICENSE = """\
                                 Apache License
                           Version 2.0, January 2004
                        http://www.apache.org/licenses/

   TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION

   1. Definitions.

      "License" shall mean the terms and conditions for use, reproduction,
      and distribution as defined by Sections 1 through 9 of this document.

      "Licensor" shall mean the copyright owner or entity authorized by
      the copyright owner that is granting the License.

      "Legal Entity" shall mean the union of the acting entity and all
      other entities that control, are controlled by, or are under common
      control with that entity. For the purposes of this definition,
      "control" means (i) the power, direct or indirect, to cause the
      direction or management of such entity, whether by contract or
      otherwise, or (ii) ownership of fifty percent (50%) or more of the
      outstanding shares, or (iii) beneficial ownership of such entity.

      "You" (or "Your") shall mean an individual or Legal Entity
      exercising permissions granted by this License.

      "Source" form shall mean the preferred form for making modifications,
      including but not limited to software source code, documentation
      source, and configuration files.

      "Object" form shall mean any form resulting from mechanical
      transformation or translation of a Source form, including but
      not limited to compiled object code, generated documentation,
      and conversions to other media types.

      "Work" shall mean the work of authorship, whether in Source or
      Object form, made available under the License, as indicated by a
      copyright notice that is included in or attached to the work
      (an example is provided in the Appendix below).

      "Derivative Works" shall mean any work, whether in Source or Object
      form, that is based on (or derived from) the Work and for which the
      editorial revisions, annotations, elaborations, or other modifications
      represent, as a whole, an original work of authorship. For the purposes
      of this License, Derivative Works shall not include works that remain
      separable from, or merely link (or bind by name) to the interfaces of,
      the Work and Derivative Works thereof.

      "Contribution" shall mean any work of authorship, including
      the original version of the Work and any modifications or additions
      to that Work or Derivative Works thereof, that is intentionally
      submitted to Licensor for inclusion in the Work by the copyright owner
      or by an individual or Legal Entity authorized to submit on behalf of
      the copyright owner. For the purposes of this definition, "submitted"
      means any form of electronic, verbal, or written communication sent
      to the Licensor or its representatives, including but not limited to
      communication on electronic mailing lists, source code control systems,
      and issue tracking systems that are managed by, or on behalf of, the
      Licensor for the purpose of discussing and improving the Work, but
      excluding communication that is conspicuously marked or otherwise
      designated in writing by the copyright owner as "Not a Contribution."

      "Contributor" shall mean Licensor and any individual or Legal Entity
      on behalf of whom a Contribution has been received by Licensor and
      subsequently incorporated within the Work.

   2. Grant of Copyright License. Subject to the terms and conditions of
      this License, each Contributor hereby grants to You a perpetual,
      worldwide, non-exclusive, no-charge, royalty-free, irrevocable
      copyright license to reproduce, prepare Derivative Works of,
      publicly display, publicly perform, sublicense, and distribute the
      Work and such Derivative Works in Source or Object form.

   3. Grant of Patent License. Subject to the terms and conditions of
      this License, each Contributor hereby grants to You a perpetual,
      worldwide, non-exclusive, no-charge, royalty-free, irrevocable
      (except as stated in this section) patent license to make, have made,
      use, offer to sell, sell, import, and otherwise transfer the Work,
      where such license applies only to those patent claims licensable
      by such Contributor that are necessarily infringed by their
      Contribution(s) alone or by combination of their Contribution(s)
      with the Work to which such Contribution(s) was submitted. If You
      institute patent litigation against any entity (including a
      cross-claim or counterclaim in a lawsuit) alleging that the Work
      or a Contribution incorporated within the Work constitutes direct
      or contributory patent infringement, then any patent licenses
      granted to You under this License for that Work shall terminate
      as of the date such litigation is filed.

   4. Redistribution. You may reproduce and distribute copies of the
      Work or Derivative Works thereof in any medium, with or without
      modifications, and in Source or Object form, provided that You
      meet the following conditions:

      (a) You must give any other recipients of the Work or
          Derivative Works a copy of this License; and

      (b) You must cause any modified files to carry prominent notices
          stating that You changed the files; and

      (c) You must retain, in the Source form of any Derivative Works
          that You distribute, all copyright, patent, trademark, and
          attribution notices from the Source form of the Work,
          excluding those notices that do not pertain to any part of
          the Derivative Works; and

      (d) If the Work includes a "NOTICE" text file as part of its
          distribution, then any Derivative Works that You distribute must
          include a readable copy of the attribution notices contained
          within such NOTICE file, excluding those notices that do not
          pertain to any part of the Derivative Works, in at least one
          of the following places: within a NOTICE text file distributed
          as part of the Derivative Works; within the Source form or
          documentation, if provided along with the Derivative Works; or,
          within a display generated by the Derivative Works, if and
          wherever such third-party notices normally appear. The contents
          of the NOTICE file are for informational purposes only and
          do not modify the License. You may add Your own attribution
          notices within Derivative Works that You distribute, alongside
          or as an addendum to the NOTICE text from the Work, provided
          that such additional attribution notices cannot be construed
          as modifying the License.

      You may add Your own copyright statement to Your modifications and
      may provide additional or different license terms and conditions
      for use, reproduction, or distribution of Your modifications, or
      for any such Derivative Works as a whole, provided Your use,
      reproduction, and distribution of the Work otherwise complies with
      the conditions stated in this License.

   5. Submission of Contributions. Unless You explicitly state otherwise,
      any Contribution intentionally submitted for inclusion in the Work
      by You to the Licensor shall be under the terms and conditions of
      this License, without any additional terms or conditions.
      Notwithstanding the above, nothing herein shall supersede or modify
      the terms of any separate license agreement you may have executed
      with Licensor regarding such Contributions.

   6. Trademarks. This License does not grant permission to use the trade
      names, trademarks, service marks, or product names of the Licensor,
      except as required for reasonable and customary use in describing the
      origin of the Work and reproducing the content of the NOTICE file.

   7. Disclaimer of Warranty. Unless required by applicable law or
      agreed to in writing, Licensor provides the Work (and each
      Contributor provides its Contributions) on an "AS IS" BASIS,
      WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or
      implied, including, without limitation, any warranties or conditions
      of TITLE, NON-INFRINGEMENT, MERCHANTABILITY, or FITNESS FOR A
      PARTICULAR PURPOSE. You are solely responsible for determining the
      appropriateness of using or redistributing the Work and assume any
      risks associated with Your exercise of permissions under this License.

   8. Limitation of Liability. In no event and under no legal theory,
      whether in tort (including negligence), contract, or otherwise,
      unless required by applicable law (such as deliberate and grossly
      negligent acts) or agreed to in writing, shall any Contributor be
      liable to You for damages, including any direct, indirect, special,
      incidental, or consequential damages of any character arising as a
      result of this License or out of the use or inability to use the
      Work (including but not limited to damages for loss of goodwill,
      work stoppage, computer failure or malfunction, or any and all
      other commercial damages or losses), even if such Contributor
      has been advised of the possibility of such damages.

   9. Accepting Warranty or Additional Liability. While redistributing
      the Work or Derivative Works thereof, You may choose to offer,
      and charge a fee for, acceptance of support, warranty, indemnity,
      or other liability obligations and/or rights consistent with this
      License. However, in accepting such obligations, You may act only
      on Your own behalf and on Your sole responsibility, not on behalf
      of any other Contributor, and only if You agree to indemnify,
      defend, and hold each Contributor harmless for any liability
      incurred by, or claims asserted against, such Contributor by reason
      of your accepting any such warranty or additional liability.

   END OF TERMS AND CONDITIONS

   APPENDIX: How to apply the Apache License to your work.

      To apply the Apache License to your work, attach the following
      boilerplate notice, with the fields enclosed by brackets "[]"
      replaced with your own identifying information. (Don't include
      the brackets!)  The text should be enclosed in the appropriate
      comment syntax for the file format. We also recommend that a
      file or class name and description of purpose be included on the
      same "printed page" as the copyright notice for easier
      identification within third-party archives.

   Copyright [yyyy] [name of copyright owner]

   Licensed under the Apache License, Version 2.0 (the "License");
   you may not use this file except in compliance with the License.
   You may obtain a copy of the License at

       http://www.apache.org/licenses/LICENSE-2.0

   Unless required by applicable law or agreed to in writing, software
   distributed under the License is distributed on an "AS IS" BASIS,
   WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
   See the License for the specific language governing permissions and
   limitations under the License.
"""

# metadata.json fields every bundle shares (the rest describes the bundle's own network and data)
METADATA_FIELDS = {
    "schema": "https://github.com/Project-MONAI/MONAI-extra-test-data/releases/download/0.8.1/meta_schema_20240725.json",
    "monai_version": "1.6.1",
    "pytorch_version": "2.14.1",
    "numpy_version": "2.4.6",
    "authors": "MONAI clinical bundles contributors",
    "copyright": "Copyright (c) MONAI clinical bundles contributors",
    "intended_use": "Research only; not for diagnostic use",
}


@dataclass(frozen=True)
class Block:
    """Config lines that must be identical in one workflow file of every bundle.

    Attributes:
        name: what the block is, for the drift report.
        text: the lines, without trailing comments. A first line ending in `:` opens a block that runs to the next
            line indented no deeper than it (so an extra entry is drift too); otherwise the block is exactly these
            lines.
        whole_list: the lines are list items and the whole list: a further item after them is drift too.
    """

    name: str
    text: str
    whole_list: bool = False

    @property
    def lines(self) -> list[str]:
        """The block's lines."""
        return self.text.splitlines()

    @property
    def anchor(self) -> str:
        """The first line, which locates the block in a file."""
        return self.lines[0]


_DEVICE = "device: \"$torch.device('cuda:0' if torch.cuda.is_available() else 'cpu')\""
_NETWORK_DEF = 'network_def: "$@network_spec()"'
_CKPT_PATH = "ckpt_path: \"$@bundle_root + '/models/model.pt'\""
_CHECK_VARIANT = 'check_variant: "$common.engines.check_trained_variant(@ckpt_path, @recorded_switches, @network_spec)"'
_DATASET = 'dataset: {_target_: Dataset, data: "@datalist", transform: "@preprocessing"}'
_STATS = "  - {_target_: StatsHandler, iteration_log: false}"
_INITIALIZE = 'initialize:\n  - "$monai.utils.set_determinism(seed=@seed)"'
_LOSS_ITEM = "output_transform: \"$lambda output: output['loss'].item()\""

# workflow file (configs/<name>) -> the blocks it shares with every other bundle
CONFIG_BLOCKS: dict[str, tuple[Block, ...]] = {
    "train.yaml": (
        Block("sample_dir", "sample_dir: \"$@bundle_root + '/sample_data'\""),
        Block("ckpt_dir", "ckpt_dir: \"$@bundle_root + '/models'\""),
        Block("log_dir", "log_dir: \"$@bundle_root + '/runs'\""),
        Block("device", _DEVICE),
        Block("progress", 'progress: "$sys.stderr.isatty()"'),
        Block("resume", "resume: true"),
        Block("network_def", _NETWORK_DEF),
        Block(
            "train#handlers ValidationHandler",
            '    - {_target_: ValidationHandler, validator: "@validate#evaluator", epoch_level: true, '
            'interval: "@val_interval"}',
        ),
        Block(
            "train#handlers StatsHandler",
            '    - {_target_: StatsHandler, iteration_log: "$common.engines.last_iteration_of_epoch", '
            f"tag_name: train_loss, {_LOSS_ITEM}}}",
        ),
        Block(
            "train#handlers TensorBoardStatsHandler",
            f'    - {{_target_: common.engines.TensorBoardStatsHandler, log_dir: "@log_dir", tag_name: train_loss, '
            f"{_LOSS_ITEM}}}",
        ),
        Block(
            "train#handlers ProgressBar",
            '    - {_target_: ignite.handlers.ProgressBar, persist: false, disable: "$not @progress"}',
        ),
        Block(
            "validate#handlers",
            "    - {_target_: StatsHandler, iteration_log: false}\n"
            '    - {_target_: common.engines.TensorBoardStatsHandler, log_dir: "@log_dir", iteration_log: false}',
            whole_list=True,
        ),
        Block("initialize", _INITIALIZE),
    ),
    "evaluate.yaml": (
        Block("ckpt_path", _CKPT_PATH),
        Block("output_dir", "output_dir: \"$@bundle_root + '/eval'\""),
        Block("device", _DEVICE),
        Block("network_def", _NETWORK_DEF),
        Block("check_checkpoint", 'check_checkpoint: "$common.config.require_checkpoint(@ckpt_path)"'),
        Block("check_variant", _CHECK_VARIANT),
        Block("dataset", _DATASET),
        Block(
            "handlers CheckpointLoader",
            '  - {_target_: CheckpointLoader, load_path: "@ckpt_path", load_dict: {model: "@network"}, '
            'map_location: "@device"}',
        ),
        Block("handlers StatsHandler", _STATS),
        Block("initialize", _INITIALIZE),
    ),
    "inference.yaml": (
        Block("ckpt_path", _CKPT_PATH),
        Block("output_dir", "output_dir: \"$@bundle_root + '/outputs'\""),
        Block("device", _DEVICE),
        Block("load_pretrain", "load_pretrain: true"),
        Block("network_def", _NETWORK_DEF),
        Block(
            "check_checkpoint",
            'check_checkpoint: "$common.config.require_checkpoint(@ckpt_path) if @load_pretrain else None"',
        ),
        Block("check_variant", _CHECK_VARIANT),
        Block("dataset", _DATASET),
        Block(
            "checkpointloader",
            'checkpointloader: {_target_: CheckpointLoader, load_path: "@ckpt_path", load_dict: {model: "@network"}, '
            'map_location: "@device"}',
        ),
        Block("handlers StatsHandler", _STATS),
        Block("initialize", _INITIALIZE),
    ),
    "multi_gpu_train.yaml": (
        Block("device", 'device: "$common.distributed.local_device()"'),
        Block("progress", 'progress: "$sys.stderr.isatty() and common.distributed.is_main_process()"'),
        Block("rank_report_dir", "rank_report_dir: null"),
        Block(
            "train#sampler",
            'train#sampler: {_target_: DistributedSampler, dataset: "@train#dataset", even_divisible: true, '
            "shuffle: true}",
        ),
        Block("train#dataloader#sampler", 'train#dataloader#sampler: "@train#sampler"'),
        Block("train#dataloader#shuffle", "train#dataloader#shuffle: false"),
        Block(
            "train#trainer#train_handlers",
            'train#trainer#train_handlers: "$common.distributed.main_process_handlers(@train#handlers) + '
            '[common.distributed.RankReport(@rank_report_dir, @network)]"',
        ),
        Block(
            "validate#evaluator#val_handlers",
            'validate#evaluator#val_handlers: "$common.distributed.main_process_handlers(@validate#handlers)"',
        ),
        Block(
            "initialize",
            'initialize:\n  - "$common.distributed.initialize(@device)"\n'
            '  - "$monai.utils.set_determinism(seed=@seed)"',
        ),
        Block("finalize", 'finalize:\n  - "$common.distributed.finalize()"'),
    ),
}

# whole files every bundle holds verbatim (path inside the bundle -> text)
WHOLE_FILES = {"LICENSE": LICENSE, "configs/logging.conf": LOGGING_CONF}


@dataclass(frozen=True)
class Drift:
    """One repeated part of one bundle that differs from its template.

    Attributes:
        path: the bundle file.
        block: the block, whole file or metadata field that differs.
        diff: a unified diff (template -> file), or what is missing.
    """

    path: Path
    block: str
    diff: str

    def __str__(self) -> str:
        try:
            shown = self.path.relative_to(ROOT)
        except ValueError:
            shown = self.path
        return f"{shown}: {self.block}\n{self.diff}"


def split_comment(line: str) -> tuple[str, str]:
    """Split a YAML line into its content and its trailing comment.

    Args:
        line: one line of a YAML file, without its newline.

    Returns:
        `(content, comment)`: the content with trailing spaces removed, and the comment with the spaces before it
        (empty when there is none). A `#` inside quotes or not preceded by a space (`@train#dataset`) is content.
    """
    quote = ""
    for i, char in enumerate(line):
        if quote:
            if char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1] in " \t"):
            content = line[:i].rstrip()
            return content, line[len(content) :]
    return line.rstrip(), ""


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _extent(contents: list[str], start: int, block: Block) -> int:
    """Index one past the block that starts at `start` in the file's comment-free lines."""
    if block.whole_list:
        end = start + 1
        # the list runs on while lines are items at the same indent or continue an item
        while end < len(contents) and contents[end].strip():
            depth = _indent(contents[end])
            if depth < _indent(contents[start]) or (depth == _indent(contents[start]) and contents[end][depth] != "-"):
                break
            end += 1
        return end
    if not block.anchor.endswith(":"):
        return start + len(block.lines)
    end = start + 1
    # a mapping or list under a key runs to the next line indented no deeper than the key
    while end < len(contents) and (not contents[end].strip() or _indent(contents[end]) > _indent(contents[start])):
        end += 1
    while end > start + 1 and not contents[end - 1].strip():
        end -= 1
    return end


def _key(line: str) -> str | None:
    """The part of a line that names what it sets: `key:` or `- {_target_: Name` (None for other lines)."""
    match = re.match(r"\s*- \{_target_: [^,}]+", line) or re.match(r"[^\s#-][^:]*:(?=\s|$)", line)
    return match.group(0) if match else None


def _locate(contents: list[str], block: Block) -> list[int]:
    """Lines where the block starts: its exact first line, else the one line setting the same key (a changed value)."""
    exact = [i for i, content in enumerate(contents) if content == block.anchor]
    key = _key(block.anchor)
    if exact or key is None:
        return exact
    same_key = [i for i, content in enumerate(contents) if content == key or content.startswith(key + " ")]
    same_key += [i for i, content in enumerate(contents) if content.startswith(key + ",")]
    return same_key if len(same_key) == 1 else []


def _unified(expected: list[str], actual: list[str], path: Path) -> str:
    return "\n".join(
        difflib.unified_diff(expected, actual, "template", str(path.name), lineterm="", n=1),
    )


def check_blocks(path: Path, blocks: tuple[Block, ...]) -> list[Drift]:
    """Compare the shared blocks of one workflow file with their templates.

    Args:
        path: the bundle's workflow file.
        blocks: its templates (`CONFIG_BLOCKS[path.name]`).

    Returns:
        One `Drift` per block that is missing, ambiguous (its anchor occurs more than once) or different.
    """
    if not path.is_file():
        return [Drift(path, "file", "missing: every bundle has this workflow file")]
    contents = [split_comment(line)[0] for line in path.read_text().splitlines()]
    drifts = []
    for block in blocks:
        found = _locate(contents, block)
        if not found:
            missing = "\n".join("- " + line for line in block.lines)
            drifts.append(Drift(path, block.name, f"missing (or its first line changed): expected\n{missing}"))
        elif len(found) > 1:
            lines = ", ".join(str(i + 1) for i in found)
            drifts.append(Drift(path, block.name, f"ambiguous: its first line occurs at lines {lines}"))
        else:
            actual = contents[found[0] : _extent(contents, found[0], block)]
            if actual != block.lines:
                drifts.append(Drift(path, block.name, _unified(block.lines, actual, path)))
    return drifts


def write_blocks(path: Path, blocks: tuple[Block, ...]) -> list[Drift]:
    """Rewrite the shared blocks of one workflow file from their templates, keeping trailing comments.

    Args:
        path: the bundle's workflow file.
        blocks: its templates.

    Returns:
        The drifts `--write` cannot repair (a block whose first line is missing or ambiguous: place it by hand).
    """
    lines = path.read_text().splitlines()
    contents = [split_comment(line)[0] for line in lines]
    unplaced = []
    for block in blocks:
        found = _locate(contents, block)
        if len(found) != 1:
            unplaced.extend(check_blocks(path, (block,)))
            continue
        start = found[0]
        end = _extent(contents, start, block)
        comments = [split_comment(line)[1] for line in lines[start:end]]
        comments += [""] * (len(block.lines) - len(comments))
        new = [content + comment for content, comment in zip(block.lines, comments)]
        lines[start:end] = new
        contents[start:end] = block.lines
    path.write_text("\n".join(lines) + "\n")
    return unplaced


def _metadata_path(bundle: Path) -> Path:
    return bundle / "configs" / "metadata.json"


def check_metadata(bundle: Path) -> list[Drift]:
    """Compare the shared fields of a bundle's metadata.json with `METADATA_FIELDS`.

    Args:
        bundle: the bundle folder.

    Returns:
        One `Drift` per field that is missing or has another value.
    """
    path = _metadata_path(bundle)
    try:
        metadata = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        return [Drift(path, "file", f"unreadable: {error}")]
    drifts = []
    for key, value in METADATA_FIELDS.items():
        if metadata.get(key) != value:
            shown = json.dumps(metadata[key]) if key in metadata else "(missing)"
            drifts.append(Drift(path, key, f"- {json.dumps(value)}\n+ {shown}"))
    return drifts


def write_metadata(bundle: Path) -> list[Drift]:
    """Set the shared fields of a bundle's metadata.json in place, keeping every other line as it is.

    Args:
        bundle: the bundle folder.

    Returns:
        The fields that could not be rewritten in place (missing from the file: add them by hand).
    """
    path = _metadata_path(bundle)
    text = path.read_text()
    unplaced = []
    for drift in check_metadata(bundle):
        key = drift.block
        pattern = re.compile(rf'^(\s*"{re.escape(key)}": )("(?:[^"\\]|\\.)*")(,?)$', re.MULTILINE)
        if not pattern.search(text):
            unplaced.append(drift)
            continue
        value = json.dumps(METADATA_FIELDS[key], ensure_ascii=False)
        text = pattern.sub(lambda match, value=value: match.group(1) + value + match.group(3), text, count=1)
    path.write_text(text)
    return unplaced


def bundles(bundles_dir: Path) -> list[Path]:
    """The bundle folders of a bundles directory.

    Args:
        bundles_dir: the folder holding one folder per bundle.

    Returns:
        The folders that hold a `configs/` folder, sorted by name.
    """
    return sorted(p for p in bundles_dir.iterdir() if (p / "configs").is_dir())


def check(bundles_dir: Path) -> list[Drift]:
    """Every drift of every bundle from the templates.

    Args:
        bundles_dir: the folder holding one folder per bundle (the repository's `bundles/`).

    Returns:
        The drifts, by bundle and file; empty when every bundle matches.
    """
    drifts = []
    for bundle in bundles(bundles_dir):
        for name, text in WHOLE_FILES.items():
            path = bundle / name
            actual = path.read_text() if path.is_file() else ""
            if actual != text:
                diff = _unified(text.splitlines(), actual.splitlines(), path) if actual else "missing"
                drifts.append(Drift(path, "whole file", diff))
        for name, blocks in CONFIG_BLOCKS.items():
            drifts.extend(check_blocks(bundle / "configs" / name, blocks))
        drifts.extend(check_metadata(bundle))
    return drifts


def write(bundles_dir: Path) -> list[Drift]:
    """Rewrite every bundle's repeated parts from the templates.

    Args:
        bundles_dir: the folder holding one folder per bundle.

    Returns:
        The drifts that need a hand edit (a block or metadata field that is missing, or a block whose first line
        is ambiguous).
    """
    unplaced = []
    for bundle in bundles(bundles_dir):
        for name, text in WHOLE_FILES.items():
            path = bundle / name
            if not path.is_file() or path.read_text() != text:
                path.write_text(text)
        for name, blocks in CONFIG_BLOCKS.items():
            path = bundle / "configs" / name
            if not path.is_file():
                unplaced.extend(check_blocks(path, blocks))
            elif check_blocks(path, blocks):
                unplaced.extend(write_blocks(path, blocks))
        if check_metadata(bundle):
            unplaced.extend(write_metadata(bundle))
    return unplaced


def main(argv: list[str] | None = None) -> int:
    """Command line: `--check` lists the drift, `--write` repairs it.

    Args:
        argv: the arguments (default: `sys.argv[1:]`).

    Returns:
        0 when every bundle matches the templates (after `--write`: when nothing needs a hand edit), else 1.
    """
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true", help="list every drift and exit 1 if there is any")
    mode.add_argument("--write", action="store_true", help="rewrite the repeated parts from the templates")
    parser.add_argument("--bundles_dir", type=Path, default=ROOT / "bundles", help="default: the repository's bundles/")
    args = parser.parse_args(argv)
    if args.write:
        remaining = write(args.bundles_dir)
        for drift in remaining:
            print(f"needs a hand edit: {drift}\n", file=sys.stderr)
        return 1 if remaining else 0
    drifts = check(args.bundles_dir)
    for drift in drifts:
        print(f"{drift}\n")
    if drifts:
        print(f"{len(drifts)} drift(s) from tools/bundle_templates.py; `--write` repairs them", file=sys.stderr)
        return 1
    n = len(bundles(args.bundles_dir))
    print(f"{n} bundles match tools/bundle_templates.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
