"""The package's shape: one import namespace, layers that point down, no import cycles.

``lint-imports`` (run by .ci/run on the built package) checks the layer contract in pyproject.toml;
these tests check what it cannot: cycles between single modules, imports named in strings, and that
the wheel carries nothing but ``twinhub``.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys
import zipfile

import pytest

from . import imports

REPO = pathlib.Path(__file__).resolve().parents[2]
LAYERS = ["twinhub.cli", "twinhub.serve|twinhub.pipelines", "twinhub.guided", "twinhub.hub",
          "twinhub.catalog|twinhub.sample", "twinhub.standards|twinhub.connectors", "twinhub.errors"]


def _layer(module: str) -> int | None:
    for rank, names in enumerate(LAYERS):
        if any(module == n or module.startswith(n + ".") for n in names.split("|")):
            return rank
    return None


def test_no_module_imports_its_way_back_to_itself():
    found = imports.cycles(imports.graph())
    assert found == [], "import cycles (lazy and string imports included): " + "; ".join(" <-> ".join(c) for c in found)


def test_string_named_imports_point_down_too():
    """import-linter cannot see ``"twinhub.x.y:Name"`` registries or importlib calls: check those here."""
    known = imports.modules()
    upward = []
    for name, path in known.items():
        for target, line, how in imports.imports_of(name, path, known):
            low, high = _layer(name), _layer(target)
            if low is not None and high is not None and high < low:
                upward.append(f"{path.name}:{line} {name} -> {target} ({how})")
            if low is not None and high is not None and high == low and "|" in LAYERS[low]:
                siblings = {n for n in LAYERS[low].split("|")}
                a = next(n for n in siblings if name == n or name.startswith(n + "."))
                b = next(n for n in siblings if target == n or target.startswith(n + "."))
                if a != b:
                    upward.append(f"{path.name}:{line} {name} -> {target} (independent siblings, {how})")
    assert upward == []


def test_the_layer_table_matches_the_import_linter_contract():
    import tomllib

    contract = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"][0]
    assert [layer.replace(" ", "") for layer in contract["layers"]] == LAYERS


@pytest.mark.slow
def test_the_wheel_holds_only_the_twinhub_package_and_no_bench(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(REPO)],
                   check=True, capture_output=True)
    (wheel,) = tmp_path.glob("twinhub-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/", 1)[0] for n in names if not n.split("/", 1)[0].endswith(".dist-info")}
    assert tops == {"twinhub"}
    for layer in ("catalog", "connectors", "standards", "pipelines", "cli", "hub"):
        assert f"twinhub/{layer}/__init__.py" in names
    assert "twinhub/standards/city.yaml" in names and "twinhub/sample/truth.csv" in names
    on_disk = {f"{name.replace('.', '/')}/__init__.py" for name, path in imports.modules().items()
               if path.name == "__init__.py"}
    assert on_disk - set(names) == set(), "packages missing from pyproject's [tool.setuptools] packages list"
    assert not any(n.startswith("bench/") or "/bench/" in n for n in names)
