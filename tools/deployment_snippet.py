"""Write (or check) the "Deploy without this project" section of every bundle README from its metadata.json.

    python tools/deployment_snippet.py          # rewrite the section between the markers in each docs/README.md
    python tools/deployment_snippet.py --check  # exit 1 if a README's section differs from its metadata

The section shows the export command, the exact input (shape, dtype, value range, channel order) and what the
output channels mean, so a deployment needs only torch. tests/test_deployment.py runs the exported model in a
torch-only environment and checks the README carries this text.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- deployment:start -->", "<!-- deployment:end -->"


def _example_shape(spatial_shape: list, n: int = 8) -> list[int]:
    out = []
    for size in spatial_shape:
        if isinstance(size, str):
            size = eval(re.sub(r"\bn\b", str(n), size), {"__builtins__": {}})
        out.append(int(size))
    return out


def _size_rule(spatial_shape: list) -> str:
    rules = sorted({s for s in spatial_shape if isinstance(s, str)})
    if not rules:
        return "fixed size " + "x".join(str(s) for s in spatial_shape)
    return "each spatial size of the form " + ", ".join(f"`{r}`" for r in rules) + " (n = 1, 2, ...)"


SKIP_POST = {"Invertd", "SaveImaged", "SqueezeDimd", "CastToTyped", "EnsureTyped", "CopyItemsd", "DeleteItemsd"}


def _postprocessing(bundle: Path) -> str:
    """What inference.yaml does to the network output, as transform names with their settings."""
    import yaml

    config = yaml.safe_load((bundle / "configs" / "inference.yaml").read_text())
    post = config.get("postprocessing", {})
    steps = []
    for t in post.get("transforms", []) if isinstance(post, dict) else []:
        if not isinstance(t, dict):
            continue
        name = str(t.get("_target_", "")).split(".")[-1]
        if name in SKIP_POST or name.startswith("Save"):
            continue
        # literal settings only: config references and expressions do not read as documentation
        literal = {k: v for k, v in t.items() if k not in ("_target_", "keys") and not str(v).startswith(("$", "@"))}
        args = ", ".join(f"{k}={v}" for k, v in literal.items())
        steps.append(f"`{name}({args})`" if args else f"`{name}`")
    return " -> ".join(steps) if steps else "none"


def _export_note(bundle: Path) -> list[str]:
    """A note on the export options ``inference.yaml`` asks for (its ``torchscript_export`` id), if any."""
    import yaml

    config = yaml.safe_load((bundle / "configs" / "inference.yaml").read_text())
    if "torchscript_export" not in config:
        return []
    return [
        "",
        "Add the options of `inference.yaml`'s `torchscript_export` id for the trained variant: `--use_trace True` "
        "for a network TorchScript cannot script, which is then traced at the input shape below (use it at that "
        "patch size).",
    ]


def snippet(bundle: Path) -> str:
    """The README section for one bundle, derived from its metadata.json only."""
    meta = json.loads((bundle / "configs" / "metadata.json").read_text())
    inp = meta["network_data_format"]["inputs"]["image"]
    out = meta["network_data_format"]["outputs"]["pred"]
    shape = [1, inp["num_channels"], *_example_shape(inp["spatial_shape"])]
    out_shape = [1, out["num_channels"], *_example_shape(out["spatial_shape"])]
    if out.get("format") == "classes" and list(out["spatial_shape"]) == [1]:
        out_shape = out_shape[:2]  # model-zoo writes [1] for a class vector; the network returns (batch, classes)
    channels = ", ".join(f"{k}: {v}" for k, v in inp.get("channel_def", {}).items())
    out_channels = ", ".join(f"{k}: {v}" for k, v in out.get("channel_def", {}).items())
    low, high = (inp.get("value_range") or [None, None])[:2]
    values = f"values in [{low}, {high}]" if low is not None else "values as preprocessed (no fixed range)"
    rel = f"bundles/{bundle.name}"
    return "\n".join(
        [
            START,
            "## Deploy without this project",
            "",
            "Export the trained network to TorchScript (the file needs only `torch` to run):",
            "",
            "```bash",
            f"python -m monai.bundle ckpt_export network_def --filepath {rel}/models/model.ts \\",
            f"    --ckpt_file {rel}/models/model.pt --meta_file {rel}/configs/metadata.json \\",
            f"    --config_file {rel}/configs/inference.yaml",
            "```",
            *_export_note(bundle),
            "",
            "```python",
            "import torch",
            "",
            'net = torch.jit.load("model.ts", map_location="cpu").eval()',
            f"x = torch.rand({', '.join(str(s) for s in shape)})  # {inp['dtype']}, {values}",
            "with torch.no_grad():",
            f"    pred = net(x)  # shape ({', '.join(str(s) for s in out_shape)}), {out['dtype']}",
            "```",
            "",
            f"- Input: `{inp['dtype']}` tensor `(batch, {inp['num_channels']}, "
            f"{', '.join('H W D'.split()[: len(inp['spatial_shape'])])})`, {_size_rule(inp['spatial_shape'])}; "
            f"channels {channels or 'n/a'}; {values} after the bundle's preprocessing "
            f"({meta.get('image_classes', 'see metadata.json')}).",
            f"- Output: the raw network output ({out.get('format', out.get('type'))}), channels {out_channels}. "
            f"The bundle's postprocessing turns it into its result ({meta.get('pred_classes', 'see metadata.json')}) "
            f"with {_postprocessing(bundle)}.",
            "- Parity with the eager network (atol 1e-4) in a virtual environment holding only torch is checked by "
            "`tests/test_deployment.py`.",
            END,
        ]
    )


def update(readme: Path, text: str) -> str:  # noqa: D103
    content = readme.read_text()
    if START in content and END in content:
        before, rest = content.split(START, 1)
        after = rest.split(END, 1)[1]
        return before + text + after
    return content.rstrip("\n") + "\n\n" + text + "\n"


def main(argv: list[str] | None = None) -> int:  # noqa: D103
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="bundle folder names (default: every bundle)")
    parser.add_argument("--check", action="store_true", help="report stale sections instead of writing them")
    args = parser.parse_args(argv)
    stale = []
    bundles = sorted(p for p in (ROOT / "bundles").iterdir() if (p / "configs" / "metadata.json").is_file())
    for bundle in [b for b in bundles if not args.names or b.name in args.names]:
        readme = bundle / "docs" / "README.md"
        new = update(readme, snippet(bundle))
        if new != readme.read_text():
            stale.append(readme)
            if not args.check:
                readme.write_text(new)
                print(f"updated {readme.relative_to(ROOT)}")
    if args.check and stale:
        print("stale deployment sections (run python tools/deployment_snippet.py):", *stale, sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
