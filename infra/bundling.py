"""Zip assets for Python Lambdas, built on this machine (no Docker engine needed).

`python_lambda_code` bundles by default: `LockedWheelsBundling` installs the locked
dependencies as Linux wheels for the Lambda's Python and CPU, then copies the sources beside
them. `bundle=false` (context) ships the plain sources instead: synthesis then needs no
package index, but the asset is NOT deployable, and the app says so with a warning.

Dependency trees are cached per (lock, extras, platform) under `.cache/bundles` (or
$TEKOA_BUNDLE_CACHE): the same tree serves every synthesis until uv.lock or pyproject.toml
changes, and the runtime-dependency test builds host-platform trees through the same function.
uv installs from its own cache offline when it can, so a warm machine needs no index at all.
"""

from __future__ import annotations

import hashlib
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
_LOCK_INPUTS = ("pyproject.toml", "uv.lock")


def find_uv() -> str:
    """The uv next to this interpreter (the project venv), else on PATH."""
    venv_bin = str(Path(sys.executable).parent)
    uv = shutil.which("uv", path=os.pathsep.join([venv_bin, os.environ.get("PATH", "")]))
    if uv is None:
        raise RuntimeError("bundling needs `uv` (run `make` once to bootstrap .venv)")
    return uv


def bundle_cache_root() -> Path:
    """Where dependency trees are cached (gitignored; override with $TEKOA_BUNDLE_CACHE)."""
    return Path(os.environ.get("TEKOA_BUNDLE_CACHE") or REPO_ROOT / ".cache" / "bundles")


def _run(command: list[str]) -> None:
    # Fixed argument lists, no shell: nothing here comes from outside the repository.
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise subprocess.CalledProcessError(result.returncode, command, result.stdout, result.stderr)


def install_dependencies(
    extras: Sequence[str], *, platform: str | None = None, python_version: str | None = None
) -> Path:
    """A directory holding the locked base dependencies plus `extras`, as `pip --target` lays them out.

    `platform`/`python_version` name the target (uv's spellings, e.g. `aarch64-manylinux_2_34`,
    `3.12`); None means this interpreter. Built once per lock and target, then reused.

    uv rather than `pip install --platform`: both fetch only binary wheels for the target, but
    pip evaluates environment markers against the *host* interpreter, so a 3.11 host would pick
    the wrong conditional dependencies for the 3.12 runtime; uv evaluates them for the target.
    Versions come from uv.lock (`uv export --frozen`), hash-checked, so the bundle holds exactly
    what the tests ran against.
    """
    digest = hashlib.sha256()
    for name in _LOCK_INPUTS:
        digest.update((REPO_ROOT / name).read_bytes())
    target_python = python_version or "{}.{}".format(*sys.version_info[:2])
    digest.update(repr((sorted(extras), platform, target_python, sys.platform)).encode())
    cache = bundle_cache_root()
    directory = cache / digest.hexdigest()[:24]
    if directory.is_dir():
        return directory

    cache.mkdir(parents=True, exist_ok=True)
    uv = find_uv()
    with tempfile.TemporaryDirectory(dir=cache, prefix="build-") as scratch:
        requirements = str(Path(scratch) / "requirements.txt")
        staging = Path(scratch) / "site"
        _run(
            [uv, "export", "--frozen", "--no-dev", "--no-emit-project", "--format", "requirements.txt",
             *(arg for extra in sorted(extras) for arg in ("--extra", extra)), "--output-file", requirements]
        )  # fmt: skip
        target = (
            ["--python-platform", platform, "--python-version", target_python]
            if platform
            else ["--python", sys.executable]
        )
        install = [uv, "pip", "install", "--no-config", "--quiet", "--target", str(staging),
                   "--only-binary", ":all:", *target, "--requirement", requirements]  # fmt: skip
        try:
            # Offline first: a machine that installed these wheels once needs no index.
            _run([*install, "--offline"])
        except subprocess.CalledProcessError:
            shutil.rmtree(staging, ignore_errors=True)
            _run(install)
        try:
            staging.rename(directory)
        except OSError:
            if not directory.is_dir():  # not a concurrent builder that finished first
                raise
    return directory


def _link_or_copy(source: str, destination: str) -> None:
    # Hard links make a bundle of a cached tree nearly free; CDK only reads (and zips) them.
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)


def lay_out(output_dir: Path, dependencies: Path | None, sources: dict[str, str]) -> None:
    """Fill `output_dir` with a dependency tree and the sources at their places in the bundle."""
    if dependencies is not None:
        shutil.copytree(dependencies, output_dir, dirs_exist_ok=True, copy_function=_link_or_copy)
    for source, target in sources.items():
        origin, destination = REPO_ROOT / source, output_dir / target
        if origin.is_dir():
            shutil.copytree(
                origin, destination, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
            )
        else:
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, destination)


@jsii.implements(ILocalBundling)
class LockedWheelsBundling:
    """Local bundler: locked dependencies of some extras + source trees, for the Lambda platform."""

    def __init__(self, *, extras: Sequence[str], sources: dict[str, str]) -> None:
        self._extras = tuple(extras)
        self._sources = dict(sources)

    def try_bundle(self, output_dir: str, *, image: DockerImage, **_options: object) -> bool:
        """Fill `output_dir` with the dependencies and sources; raise if anything fails."""
        dependencies = install_dependencies(
            self._extras, platform=LAMBDA_WHEEL_PLATFORM, python_version=PYTHON_VERSION
        )
        lay_out(Path(output_dir), dependencies, self._sources)
        return True


def _source_excludes(sources: dict[str, str]) -> list[str]:
    # .dockerignore semantics: drop everything, then re-include exactly the bundle's inputs.
    return [
        "*",
        *(f"!{name}" for name in _LOCK_INPUTS),
        *(f"!{source}" for source in sources),
        "**/__pycache__",
        "**/*.pyc",
    ]


def python_lambda_code(*, extras: Sequence[str], sources: dict[str, str], bundle: bool) -> lambda_.Code:
    """Code for a zip Lambda: `sources` maps repo paths to their place in the zip.

    The source fingerprint covers every input (sources, pyproject.toml, uv.lock), so a change to
    any of them invalidates CDK's bundling cache; the asset hash is the bundle's output.
    """
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
