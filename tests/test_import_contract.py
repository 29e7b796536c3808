"""The package's shape: one import root, and imports that point one way (pyproject's contracts)."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
CONTRACTS = (
    "Layers: cli above app above pipeline above models",
    "Pages reach models only through the pipeline",
    "The web app never imports a module that imports TensorFlow",
)


def _lint_imports(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", *arguments],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_import_contracts_hold():
    result = _lint_imports()
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    for name in CONTRACTS:
        assert f"{name} KEPT" in result.stdout, result.stdout[-4000:]


def test_a_broken_contract_is_reported(tmp_path):
    """The checker reads the real import graph: an import the app does make is caught when forbidden."""
    config = tmp_path / "contracts.toml"
    config.write_text(
        '[tool.importlinter]\nroot_packages = ["cocoseg"]\n\n'
        '[[tool.importlinter.contracts]]\nname = "pages never cancel jobs"\ntype = "forbidden"\n'
        'source_modules = ["cocoseg.app.pages"]\nforbidden_modules = ["cocoseg.pipeline.jobs.control"]\n'
    )
    result = _lint_imports(str(config))
    assert result.returncode == 1 and "pages never cancel jobs BROKEN" in result.stdout, result.stdout[-2000:]
    assert "cocoseg.app.pages." in result.stdout


def test_forbidding_keras_itself_catches_a_module_no_list_names(tmp_path):
    """The web-app contract forbids the packages, not a hand-kept list of our modules that import them:
    a chain through any module that imports Keras (here models.encoders, once missing from the list)
    is caught."""
    config = tmp_path / "contracts.toml"
    config.write_text(
        '[tool.importlinter]\nroot_packages = ["cocoseg"]\ninclude_external_packages = true\n\n'
        '[[tool.importlinter.contracts]]\nname = "weights import never reaches keras"\ntype = "forbidden"\n'
        'source_modules = ["cocoseg.pipeline.training.weights_import"]\nforbidden_modules = ["keras"]\n'
    )
    result = _lint_imports(str(config))
    assert result.returncode == 1 and "never reaches keras BROKEN" in result.stdout, result.stdout[-2000:]
    assert "-> keras (l." in result.stdout, result.stdout[-2000:]  # the chain's last link names the line


def test_the_distribution_installs_only_cocoseg():
    top_level = importlib.metadata.distribution("cocoseg").read_text("top_level.txt") or ""
    assert top_level.split() == ["cocoseg"]


def test_python_dash_m_cocoseg_is_the_command_line():
    result = subprocess.run(
        [sys.executable, "-m", "cocoseg", "--help"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0 and "usage: cocoseg" in result.stdout, result.stderr[-2000:]
