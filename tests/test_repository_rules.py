"""The rules of CONTRIBUTING.md that no other suite checks, one test per rule (issue 18).

Each test's docstring quotes its rule. Rules that another suite checks (tests/test_bundles.py,
tests/test_training_contract.py, tests/tools/test_bundle_templates.py, tests/common/test_lazy_exports.py, ...) are
not repeated here; where this file checks more of such a rule (every config file, not only the standard handlers),
its docstring says so.
"""

from __future__ import annotations

import ast
import importlib
import re
from collections import Counter
from pathlib import Path

import pytest
import yaml
from bundle_helpers import BUNDLE_IDS, BUNDLES, ROOT, config_components

from common.workflows import load_config

COMMON = ROOT / "common"
TESTS = ROOT / "tests"
CODE_FOLDERS = ("common", "tests", "tools", "benchmarks", "apps")
#: the layering of common/'s kinds: a kind imports only kinds of a lower layer (and the top-level modules)
LAYERS = {"data": 0, "transforms": 1, "networks": 2, "losses": 2, "metrics": 3, "engines": 4}
KINDS = tuple(LAYERS)
STANDARD_WORKFLOWS = ("train", "evaluate", "inference")
#: docstring markers (noqa D1xx) of the lint baseline, code written before the rules; lower it when you drop some
NOQA_DOCSTRING_BASELINE = 118


def _python_files(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py") if "__pycache__" not in p.parts)


def _relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _workflow_configs(bundle: Path) -> list[Path]:
    """The bundle's standalone workflow files: train/evaluate/inference.yaml and <study>_<workflow>.yaml."""
    pattern = re.compile(rf"(\w+_)?({'|'.join(STANDARD_WORKFLOWS)})\.yaml")
    return [p for p in sorted((bundle / "configs").glob("*.yaml")) if pattern.fullmatch(p.name)
            and p.name != "multi_gpu_train.yaml"]  # fmt: skip


def _config_code(path: Path) -> str:
    """A YAML file without its comment lines and trailing comments (their wording may name anything)."""
    lines = [line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")]
    return "\n".join(re.sub(r"\s+#\s.*$", "", line) for line in lines)


ALL_CONFIGS = sorted((ROOT / "bundles").glob("*/configs/*.yaml"))
CONFIG_IDS = [_relative(p).removeprefix("bundles/") for p in ALL_CONFIGS]


# ---- tests and code layout -------------------------------------------------------------------------------------


def test_test_file_names_are_unique():
    """CONTRIBUTING.md: "Test file names are unique across `tests/` (there are no `__init__.py` files)"."""
    counts = Counter(p.name for p in TESTS.rglob("test_*.py"))
    repeated = {name: sorted(_relative(p) for p in TESTS.rglob(name)) for name, n in counts.items() if n > 1}
    assert not repeated, f"test file names used twice (pytest imports them by name): {repeated}"
    inits = sorted(_relative(p) for p in TESTS.rglob("__init__.py"))
    assert not inits, f"tests/ holds no packages: {inits}"


def test_no_python_in_a_bundle():
    """CONTRIBUTING.md: "No Python in a bundle. All code lives in `common/`"."""
    python = sorted(_relative(p) for p in (ROOT / "bundles").rglob("*.py"))
    assert not python, f"bundle code belongs in common/<kind>/: {python}"


def _mirror_names(module: Path) -> list[str]:
    qualifier = module.parent.name if module.parent != COMMON else "common"
    return [f"test_{module.stem}.py", f"test_{module.stem}_{qualifier}.py"]


def test_unit_tests_mirror_the_package():
    """CONTRIBUTING.md: "Unit tests mirror the package (`common/data/acdc.py` -> `tests/common/data/test_acdc.py`)".

    Where another file of tests/ takes `test_<module>.py`, the mirror is `test_<module>_<kind>.py` (`_common` for a
    top-level module).
    """
    missing = []
    for module in sorted(COMMON.glob("*.py")) + sorted(COMMON.glob("*/*.py")):
        if module.name.startswith("_"):
            continue
        folder = TESTS / module.parent.relative_to(ROOT)
        if not any((folder / name).is_file() for name in _mirror_names(module)):
            missing.append(f"{_relative(module)} -> {_relative(folder)}/{' or '.join(_mirror_names(module))}")
    assert not missing, "modules without their mirrored unit-test file:\n" + "\n".join(missing)


def imported_modules(path: Path, package: str) -> list[tuple[ast.stmt, str]]:
    """Every import of a module's source, module- or function-level, as (statement, absolute dotted name).

    ``from .x import y`` yields ``<package>.x.y`` (``y`` may be a name or a submodule: both are reached through
    ``<package>.x``); relative imports are resolved against ``package``, the module's own package.
    """
    parts = package.split(".")
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            found += [(node, f"{base}.{alias.name}") for alias in node.names]
    return found


def sideways_imports(common: Path) -> list[str]:
    """Imports of a kind of ``common`` by a module of a kind that is not above it in :data:`LAYERS`."""
    problems = []
    for kind, layer in LAYERS.items():
        for path in sorted((common / kind).glob("*.py")):
            source = path.read_text()
            for node, name in imported_modules(path, f"{common.name}.{kind}"):
                parts = name.split(".")
                if parts[0] != common.name or len(parts) < 2 or parts[1] not in LAYERS or parts[1] == kind:
                    continue
                if LAYERS[parts[1]] >= layer:
                    below = sorted(k for k, v in LAYERS.items() if v < layer) or ["no other kind"]
                    problems.append(
                        f"{path.relative_to(common.parent)}:{node.lineno}: `{ast.get_source_segment(source, node)}` "
                        f"({kind} -> {parts[1]}; {kind} may import {', '.join(below)} and the top-level modules)"
                    )
    return sorted(set(problems))


def test_kinds_import_only_the_kinds_below_them():
    """A kind imports only the kinds below it: data < transforms < networks, losses < metrics < engines.

    CONTRIBUTING.md: "Code two kinds use lives beside the kinds, not inside one of them. A kind does not import
    another kind's internals sideways". Module-level and function-level imports count alike.
    """
    problems = sideways_imports(COMMON)
    assert not problems, "imports against the layering of common/'s kinds:\n" + "\n".join(problems)


#: modules that keep their imports of common/ inside functions: `import common` and the config helpers every config
#: loads first stay free of torch and MONAI's engines (start-up time, benchmarks/startup.py)
FUNCTION_LEVEL_IMPORTS_ALLOWED = ("common/__init__.py", "common/config.py")


def test_common_is_imported_at_module_level():
    """CONTRIBUTING.md: "`common/`'s own modules are imported at the top of a module, never inside a function"."""
    hidden = []
    for path in _python_files("common"):
        if _relative(path) in FUNCTION_LEVEL_IMPORTS_ALLOWED:
            continue
        source = path.read_text()
        for function in ast.walk(ast.parse(source)):
            if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for node in ast.walk(function):
                    if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("common")):
                        hidden.append(f"{_relative(path)}:{node.lineno}: `{ast.get_source_segment(source, node)}`")
    assert not hidden, "imports of common/ inside functions (move them to the top):\n" + "\n".join(sorted(set(hidden)))


def test_the_layering_rule_names_the_file_and_the_import(tmp_path: Path):
    common = tmp_path / "common"
    for kind in ("data", "transforms", "losses", "engines"):
        (common / kind).mkdir(parents=True)
    (common / "data" / "reader.py").write_text("def read():\n    from ..transforms.steps import step\n")
    (common / "transforms" / "steps.py").write_text("from ..data.reader import read\nfrom common import engines\n")
    (common / "losses" / "loss.py").write_text("import common.networks.unet\nfrom ..transforms import steps\n")
    (common / "engines" / "run.py").write_text("from ..transforms import steps\nfrom ..sr_ops import upsample\n")
    assert sideways_imports(common) == [
        "common/data/reader.py:2: `from ..transforms.steps import step` (data -> transforms; data may import no other "
        "kind and the top-level modules)",
        "common/losses/loss.py:1: `import common.networks.unet` (losses -> networks; losses may import data, "
        "transforms and the top-level modules)",
        "common/transforms/steps.py:2: `from common import engines` (transforms -> engines; transforms may import "
        "data and the top-level modules)",
    ]


def test_from_future_annotations_everywhere():
    """CONTRIBUTING.md: "`from __future__ import annotations` in every file"."""
    missing = [_relative(p) for p in _python_files(*CODE_FOLDERS)
               if "from __future__ import annotations" not in p.read_text()]  # fmt: skip
    assert not missing, f"add `from __future__ import annotations` to {missing}"


def _public_callables(tree: ast.Module):
    """Module-level functions and methods of public classes, except those whose name starts with one `_`."""

    def public(name: str) -> bool:
        return not name.startswith("_") or (name.startswith("__") and name.endswith("__"))

    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and public(node.name):
            yield node.name, node
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and public(item.name):
                    yield f"{node.name}.{item.name}", item


def test_public_parameters_have_type_hints():
    """CONTRIBUTING.md: "type hints on every parameter of a public function or method of `common/`"."""
    missing = []
    for path in _python_files("common"):
        for name, node in _public_callables(ast.parse(path.read_text())):
            arguments = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs, node.args.vararg,
                         node.args.kwarg]  # fmt: skip
            bare = [a.arg for a in arguments if a is not None and a.annotation is None and a.arg not in ("self", "cls")]
            if bare:
                missing.append(f"{_relative(path)}:{node.lineno} {name}({', '.join(bare)})")
    assert not missing, "parameters without a type hint:\n" + "\n".join(missing)


def test_subpackage_init_adds_nothing_by_hand():
    """CONTRIBUTING.md: "the subpackage's `__init__.py` adds nothing by hand"."""
    for kind in KINDS:
        path = COMMON / kind / "__init__.py"
        statements = ast.parse(path.read_text()).body
        code = [
            ast.unparse(s) for s in statements if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))
        ]
        assert code == [
            "from __future__ import annotations",
            "from .._lazy import lazy_exports",
            "__all__, __getattr__, __dir__ = lazy_exports(__name__)",
        ], f"{_relative(path)}: public names come from the submodules' __all__ lists only"


def test_no_new_docstring_noqa_markers():
    """CONTRIBUTING.md: "Code written before the docstring rules carries ... markers ... New code gets no markers"."""
    count = sum(len(re.findall(r"noqa: [^\n]*\bD1\d\d", p.read_text())) for p in _python_files(*CODE_FOLDERS))
    assert count <= NOQA_DOCSTRING_BASELINE, (
        f"{count} `# noqa: D1xx` markers, the baseline has {NOQA_DOCSTRING_BASELINE}: write the docstring instead"
    )


# ---- bundle configs --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bundle", BUNDLES, ids=BUNDLE_IDS)
def test_bundle_name_is_snake_case(bundle: Path):
    """CONTRIBUTING.md: "**Name**: `<anatomy>_<modality>_<method>_<task>` style, snake_case" (task: test_bundles)."""
    assert re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)+", bundle.name), f"{bundle.name} is not snake_case"


@pytest.mark.parametrize("bundle", BUNDLES, ids=BUNDLE_IDS)
def test_configs_are_yaml(bundle: Path):
    """CONTRIBUTING.md: "**YAML** everywhere": configs/ holds YAML files, metadata.json and logging.conf only."""
    others = sorted(p.name for p in (bundle / "configs").iterdir()
                    if p.suffix != ".yaml" and p.name not in ("metadata.json", "logging.conf"))  # fmt: skip
    assert not others, f"{bundle.name}/configs: {others} (configs are YAML)"


def _public_names(package: str) -> set[str]:
    return set(importlib.import_module(package).__all__)  # a kind's __all__ is read without importing its modules


@pytest.mark.parametrize("config", ALL_CONFIGS, ids=CONFIG_IDS)
def test_configs_reach_common_through_public_names(config: Path):
    """CONTRIBUTING.md: "Configs reach it with `_target_: common.<kind>.<Name>` and `$import common` in `imports`"."""
    top_level = {p.stem for p in COMMON.glob("*.py") if not p.name.startswith("_")}
    wrong = []
    for package, name in sorted(set(re.findall(r"\bcommon\.(\w+)\.(\w+)", _config_code(config)))):
        if package not in (*KINDS, *top_level) or name not in _public_names(f"common.{package}"):
            wrong.append(f"common.{package}.{name}")
    assert not wrong, f"{config.name} names {wrong}: use common.<kind>.<Name> with a name of the kind's __all__"
    if config in _workflow_configs(config.parents[1]):
        imports = yaml.safe_load(config.read_text()).get("imports", [])
        assert "$import common" in imports, f"{config.name}: add `$import common` to `imports`"


def _contributing_config_ids() -> list[tuple[list[str], str]]:
    """The rows of CONTRIBUTING.md's "Config ids" table as (ids, where)."""
    text = (ROOT / "CONTRIBUTING.md").read_text()
    table = text.split("### Config ids", 1)[1].split("\n\n", 2)[1]
    rows = []
    for line in table.splitlines()[2:]:
        ids, where, _ = (cell.strip() for cell in line.strip("|").split("|", 2))
        rows.append((re.findall(r"`([^`]+)`", ids), where))
    return rows


def _where(where: str, bundle: str) -> list[str]:
    """Workflow files a "where" cell names for ``bundle``: `all`, `train`, `evaluate, inference`, `all (detection)`."""
    files, _, qualifier = where.partition("(")
    tasks = [t.strip().replace("-", "_") for t in qualifier.rstrip(")").split(",") if t.strip()]
    if "optional" in tasks or (tasks and not any(t in bundle for t in tasks)):
        return []
    names = [f.strip() for f in files.split(",")]
    return list(STANDARD_WORKFLOWS) if names == ["all"] else names


def test_the_config_ids_table_is_read():
    rows = dict((ids[0], where) for ids, where in _contributing_config_ids())
    assert rows["bundle_root"] == "all" and rows["finalize"] == "multi_gpu_train" and len(rows) >= 20
    assert _where("all (detection)", "mitosis_detection") == list(STANDARD_WORKFLOWS)
    assert _where("inference (registration, super-resolution)", "mitosis_detection") == []
    assert _where("inference (optional)", "mitosis_detection") == []


@pytest.mark.parametrize("bundle", BUNDLES, ids=BUNDLE_IDS)
def test_every_config_id_of_the_table_exists(bundle: Path):
    """CONTRIBUTING.md's "Config ids" table: every id a row names is in the workflow files its row says."""
    missing = []
    for ids, where in _contributing_config_ids():
        for workflow in _where(where, bundle.name):
            if workflow == "multi_gpu_train":
                present = set(yaml.safe_load((bundle / "configs" / "multi_gpu_train.yaml").read_text()))
                missing += [f"multi_gpu_train.yaml: {i}" for i in ids if i not in present]
            else:
                parser = load_config(bundle, workflow)
                missing += [f"{workflow}.yaml: {i}" for i in ids if i not in parser]
    assert not missing, f"{bundle.name} lacks {missing}"


@pytest.mark.parametrize("bundle", BUNDLES, ids=BUNDLE_IDS)
def test_bundle_root_finds_the_bundle_by_its_name(bundle: Path):
    """CONTRIBUTING.md: "`bundle_root` | all | `$common.config.bundle_root('<name>')`"."""
    for config in _workflow_configs(bundle):
        value = yaml.safe_load(config.read_text()).get("bundle_root")
        assert value == f"$common.config.bundle_root('{bundle.name}')", f"{config.name}: bundle_root is {value!r}"


@pytest.mark.parametrize("bundle", BUNDLES, ids=BUNDLE_IDS)
def test_checks_are_the_first_run_steps(bundle: Path):
    """The checks run first: train starts with `check_data`, evaluate and inference with the checkpoint's.

    CONTRIBUTING.md: "`check_checkpoint` | evaluate, inference | ... the first `run` step", "`check_variant` | ... run
    after `check_checkpoint`", "`check_data` | all | ... the first `run` step of train, the next one of evaluate and
    inference".
    """
    for config in _workflow_configs(bundle):
        run = yaml.safe_load(config.read_text())["run"]
        first = ["$@check_data"] if config.stem.endswith("train") else [
            "$@check_checkpoint", "$@check_variant", "$@check_data"]  # fmt: skip
        assert run[: len(first)] == first, f"{config.name}: run starts with {run[: len(first)]}, not {first}"


@pytest.mark.parametrize("config", ALL_CONFIGS, ids=CONFIG_IDS)
def test_optional_inputs_are_loaded_with_load_image_if_present(config: Path):
    """Optional inputs are loaded with LoadImageIfPresentd.

    CONTRIBUTING.md: "Optional inputs ... are loaded with `common.transforms.LoadImageIfPresentd`, not
    `LoadImaged(allow_missing_keys=True)`".
    """
    loaders = [c for c in config_components(yaml.safe_load(config.read_text()))
               if str(c["_target_"]).split(".")[-1] == "LoadImaged" and c.get("allow_missing_keys")]  # fmt: skip
    assert not loaders, f"{config.name}: {loaders} (MONAI Label replaces LoadImaged and requires every key)"


@pytest.mark.parametrize("bundle", BUNDLES, ids=BUNDLE_IDS)
def test_extra_workflows_are_named_kept_apart_and_tested(bundle: Path):
    """A study's own workflows are named after it, write apart from the standard ones and have tests.

    CONTRIBUTING.md: "More workflows than the three standard ones are allowed ...: name them `<study>_train.yaml`
    etc., give them their own checkpoint name and output sub-folders, and cover them in the bundle's own test file".
    """
    configs = {p.stem: yaml.safe_load(p.read_text()) for p in (bundle / "configs").glob("*.yaml")}
    workflows = {p.stem for p in _workflow_configs(bundle)}
    unnamed = sorted(n for n, c in configs.items() if "run" in c and n != "multi_gpu_train" and n not in workflows)
    assert not unnamed, f"{bundle.name}: workflow files {unnamed} are not named <study>_<train|evaluate|inference>"
    test_file = TESTS / "bundles" / f"test_{bundle.name}.py"
    for name in sorted(workflows - set(STANDARD_WORKFLOWS)):
        standard = configs[name.rsplit("_", 1)[1]]
        for key in ("ckpt_dir", "ckpt_path", "output_dir"):
            if key in standard:
                assert configs[name].get(key, standard[key]) != standard[key], f"{name}.yaml: give it its own {key}"
        assert test_file.is_file() and name in test_file.read_text(), f"cover {name}.yaml in {_relative(test_file)}"


@pytest.mark.parametrize("config", ALL_CONFIGS, ids=CONFIG_IDS)
def test_tensorboard_handlers_are_the_common_engines_one(config: Path):
    """Configs name no TensorBoard handler but common.engines.TensorBoardStatsHandler.

    CONTRIBUTING.md: "Build TensorBoard handlers with `common.engines.TensorBoardStatsHandler`, which opens its event
    file on first use" (MONAI's would leave an event file per rank).
    """
    names = set(re.findall(r"[\w.]*TensorBoard\w*", _config_code(config))) - {"common.engines.TensorBoardStatsHandler"}
    assert not names, f"{config.name} names {sorted(names)}: use common.engines.TensorBoardStatsHandler"


def test_common_builds_no_monai_tensorboard_handler():
    """CONTRIBUTING.md: "Build TensorBoard handlers with `common.engines.TensorBoardStatsHandler`" (in common/)."""
    wrapper = COMMON / "engines" / "tensorboard.py"
    users = [f"{_relative(p)}: {name}" for p in _python_files("common") if p != wrapper
             for _, name in imported_modules(p, ".".join(p.relative_to(ROOT).parent.parts))
             if name.startswith("monai.handlers") and "TensorBoard" in name]  # fmt: skip
    assert not users, f"import common.engines.TensorBoardStatsHandler instead: {users}"


@pytest.mark.parametrize("config", ALL_CONFIGS, ids=CONFIG_IDS)
def test_no_checkpoint_saver(config: Path):
    """No config file names MONAI's CheckpointSaver (test_training_contract.py checks train#handlers closer).

    CONTRIBUTING.md: "**Checkpoints** are written by `common.engines.TrainingCheckpoints` only (never MONAI's
    `CheckpointSaver`, ...)".
    """
    assert "CheckpointSaver" not in _config_code(config), f"{config.name}: use common.engines.TrainingCheckpoints"


# ---- bundle READMEs --------------------------------------------------------------------------------------------


def _sections(bundle: Path) -> dict[str, str]:
    text = (bundle / "docs" / "README.md").read_text()
    return {s.split("\n", 1)[0].strip(): s for s in re.split(r"^## ", text, flags=re.M)[1:]}


@pytest.mark.parametrize("bundle", BUNDLES, ids=BUNDLE_IDS)
def test_readme_shows_the_data_layout_as_a_tree(bundle: Path):
    """The README's `## Data...` section shows the layout as a code block that starts at the dataset's folder.

    CONTRIBUTING.md: "Each bundle reads the real public dataset in its own on-disk layout, and its README shows that
    layout as a tree".
    """
    data = [text for heading, text in _sections(bundle).items() if heading.startswith("Data")]
    trees = [block for text in data for block in re.findall(r"```\w*\n(.*?)```", text, flags=re.S)
             if re.match(r"\S+/(\s|$)", block)]  # fmt: skip
    assert trees, f"{bundle.name}/docs/README.md: show the dataset layout as a tree in its '## Data' section"


@pytest.mark.parametrize("bundle", BUNDLES, ids=BUNDLE_IDS)
def test_readme_results_come_from_a_benchmark_with_its_command(bundle: Path):
    """The README's `## Results` section gives the benchmark command beside its printed table.

    CONTRIBUTING.md: "Add a benchmark to `benchmarks/` and put its printed table, with the command, in the bundle
    README".
    """
    results = "".join(text for heading, text in _sections(bundle).items() if heading.startswith("Results"))
    scripts = re.findall(r"python (benchmarks/\w+\.py)", results)
    assert scripts, f"{bundle.name}/docs/README.md: the '## Results' section needs the benchmark command"
    assert all((ROOT / s).is_file() for s in scripts), f"{bundle.name}: {scripts} do not all exist"
    assert "```" in results or re.search(r"^\|.*\|$", results, flags=re.M), f"{bundle.name}: no results table"
