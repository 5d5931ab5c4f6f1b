"""The API zip's local bundler: locked wheels for the Lambda platform, sources in import layout.

The package index is replaced by a recorder, so these tests stay offline and fast.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from infra import bundling
from infra.components.api import API_SOURCES

pytestmark = pytest.mark.xdist_group("infra")


@pytest.fixture
def recorded_commands(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    commands: list[list[str]] = []

    def record(command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        commands.append(command)
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(subprocess, "run", record)
    monkeypatch.setattr(bundling, "_find_uv", lambda: "uv")
    return commands


def test_bundle_installs_the_locked_api_extra_as_linux_arm64_cp312_wheels(
    recorded_commands: list[list[str]], tmp_path: Path
) -> None:
    bundler = bundling.LockedWheelsBundling(extras=["api"], sources=API_SOURCES)

    assert bundler.try_bundle(str(tmp_path), image=None) is True  # type: ignore[arg-type]

    export, install = recorded_commands
    assert export[:3] == ["uv", "export", "--frozen"]
    assert "--no-dev" in export
    assert export[export.index("--extra") + 1] == "api"
    assert install[:3] == ["uv", "pip", "install"]
    assert install[install.index("--target") + 1] == str(tmp_path)
    assert install[install.index("--python-platform") + 1] == "aarch64-manylinux_2_34"
    assert install[install.index("--python-version") + 1] == "3.12"
    assert install[install.index("--only-binary") + 1] == ":all:"


def test_bundle_lays_out_sources_so_the_handler_and_tekoa_import(
    recorded_commands: list[list[str]], tmp_path: Path
) -> None:
    bundling.LockedWheelsBundling(extras=["api"], sources=API_SOURCES).try_bundle(str(tmp_path), image=None)  # type: ignore[arg-type]

    assert (tmp_path / "functions" / "__init__.py").is_file()
    assert (tmp_path / "functions" / "api").is_dir()
    assert (tmp_path / "tekoa" / "names.py").is_file()
    assert not list(tmp_path.rglob("__pycache__"))
