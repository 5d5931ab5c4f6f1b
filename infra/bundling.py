"""Zip assets for Python Lambdas, built on this machine (no Docker engine needed).

Two modes, chosen by the `bundle` context flag:

- off (synth, tests, CI without a package index): the asset is the plain source files, so
  synthesis is offline and fast. Such an asset is NOT deployable: it lacks the dependencies.
- on (`cdk deploy -c bundle=true`): `try_bundle` installs the locked dependencies as
  Linux wheels for the Lambda's Python and CPU, then copies the sources beside them.

The source fingerprint covers every input of the bundle (sources, pyproject.toml, uv.lock), so
a change to any of them invalidates CDK's bundling cache; the asset hash is the bundle's output.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import jsii
from aws_cdk import BundlingOptions, DockerImage, IgnoreMode, ILocalBundling
from aws_cdk import aws_lambda as lambda_

from infra.constants import LAMBDA_WHEEL_PLATFORM, PYTHON_VERSION, REPO_ROOT

# Docker is never used (local bundling always succeeds or raises), but BundlingOptions needs an
# image; this is the one a Docker fallback would use.
_FALLBACK_IMAGE = f"public.ecr.aws/sam/build-python{PYTHON_VERSION}"


def _find_uv() -> str:
    venv_bin = str(Path(sys.executable).parent)
    uv = shutil.which("uv", path=os.pathsep.join([venv_bin, os.environ.get("PATH", "")]))
    if uv is None:
        raise RuntimeError("bundling needs `uv` (run `make` once to bootstrap .venv)")
    return uv


@jsii.implements(ILocalBundling)
class LockedWheelsBundling:
    """Local bundler: locked dependencies of some extras + source trees, for the Lambda platform.

    uv rather than `pip install --platform`: both fetch only binary wheels for the target, but
    pip evaluates environment markers against the *host* interpreter, so a 3.11 host would pick
    the wrong conditional dependencies for the 3.12 runtime; uv evaluates them for the target.
    Versions come from uv.lock (`uv export --frozen`), hash-checked, so the zip holds exactly
    what the tests ran against.
    """

    def __init__(self, *, extras: Sequence[str], sources: dict[str, str]) -> None:
        self._extras = tuple(extras)
        self._sources = dict(sources)

    def try_bundle(self, output_dir: str, *, image: DockerImage, **_options: object) -> bool:
        """Fill `output_dir` with the dependencies and sources; raise if anything fails."""
        uv = _find_uv()
        extras = [arg for extra in self._extras for arg in ("--extra", extra)]
        with tempfile.TemporaryDirectory() as scratch:
            requirements = str(Path(scratch) / "requirements.txt")
            # Fixed argument lists, no shell: nothing here comes from outside the repository.
            subprocess.run(  # noqa: S603
                [uv, "export", "--frozen", "--no-dev", "--no-emit-project", "--format", "requirements.txt",
                 *extras, "--output-file", requirements],
                cwd=REPO_ROOT,
                check=True,
            )  # fmt: skip
            subprocess.run(  # noqa: S603
                [uv, "pip", "install", "--no-config", "--target", output_dir, "--only-binary", ":all:",
                 "--python-platform", LAMBDA_WHEEL_PLATFORM, "--python-version", PYTHON_VERSION,
                 "--requirement", requirements],
                cwd=REPO_ROOT,
                check=True,
            )  # fmt: skip
        for source, target in self._sources.items():
            origin, destination = REPO_ROOT / source, Path(output_dir) / target
            if origin.is_dir():
                shutil.copytree(
                    origin,
                    destination,
                    dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
                )
            else:
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, destination)
        return True


def _source_excludes(sources: dict[str, str]) -> list[str]:
    # .dockerignore semantics: drop everything, then re-include exactly the bundle's inputs.
    return [
        "*",
        "!pyproject.toml",
        "!uv.lock",
        *(f"!{source}" for source in sources),
        "**/__pycache__",
        "**/*.pyc",
    ]


def python_lambda_code(*, extras: Sequence[str], sources: dict[str, str], bundle: bool) -> lambda_.Code:
    """Code for a zip Lambda: `sources` maps repo paths to their place in the zip."""
    excludes = _source_excludes(sources)
    if not bundle:
        return lambda_.Code.from_asset(str(REPO_ROOT), exclude=excludes, ignore_mode=IgnoreMode.DOCKER)
    return lambda_.Code.from_asset(
        str(REPO_ROOT),
        exclude=excludes,
        ignore_mode=IgnoreMode.DOCKER,
        bundling=BundlingOptions(
            image=DockerImage.from_registry(_FALLBACK_IMAGE),
            local=LockedWheelsBundling(extras=extras, sources=sources),
        ),
    )
