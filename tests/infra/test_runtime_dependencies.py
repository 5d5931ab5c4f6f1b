"""Every workload the app deploys starts in a clean interpreter that sees only its bundle.

For each Python Lambda and container image in the synthesised templates, the test installs the
bundle's locked dependency set (the extras the registry names, which the zips and the
Dockerfiles install) and imports the entry module in `python -I -S` with nothing on its path
but that bundle and the standard library, under the environment the template gives it. A
runtime dependency that reaches the dev venv only through another package (as aws-xray-sdk did
through moto) fails here.

Two honest limits: the bundles are built for this machine's interpreter and CPU (the same
requirement set, resolved from the same lock, as the arm64 / python3.12 artefacts), and the
import exercises what runs at start, not every lazily imported path.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from infra.bundling import install_dependencies, lay_out
from infra.constants import XRAY_DAEMON_DOCKERFILE
from infra.workloads import WORKLOADS, Workload

pytestmark = pytest.mark.xdist_group("infra")

# Images in the app that run no Python of ours.
NON_PYTHON_IMAGES = {XRAY_DAEMON_DOCKERFILE}
PLACEHOLDER = "tekoa-placeholder"
URL_PLACEHOLDER = "https://tekoa-placeholder.invalid"


@dataclass(frozen=True)
class Deployed:
    """One deployed process: its registry entry and the environment the template gives it."""

    where: str
    workload: Workload
    environment: dict[str, str]


def _plain(variables: dict[str, Any]) -> dict[str, str]:
    # References to other resources (ARNs, endpoints) only exist after deploy: any string will do
    # for starting the process, which must not call AWS or the database at import.
    # (A setting that must be a URL gets a URL: settings are validated at import.)
    return {
        name: value if isinstance(value, str) else URL_PLACEHOLDER if name.endswith("_URL") else PLACEHOLDER
        for name, value in variables.items()
    }


def _image_dockerfiles(platform: Any, concern: str) -> dict[str, str]:
    """Asset hash -> the Dockerfile (path in the repository) it is built from."""
    images = platform.assets(concern).get("dockerImages", {})
    return {asset_hash: image["source"]["dockerFile"] for asset_hash, image in images.items()}


def _dockerfile_of(image: Any, dockerfiles: dict[str, str]) -> str:
    (dockerfile,) = [path for asset_hash, path in dockerfiles.items() if asset_hash in str(image)]
    return dockerfile


def deployed_processes(platform: Any) -> list[Deployed]:
    """Every Python Lambda and every container of the app, mapped to its registry entry."""
    by_handler = {w.handler: w for w in WORKLOADS.values() if w.package == "zip"}
    # An image several functions share names its default workload; the others pick their
    # handler with the function's image command.
    by_dockerfile = {
        w.dockerfile: w for w in WORKLOADS.values() if w.package == "image" and not w.image_command
    }
    by_command = {w.image_command: w for w in WORKLOADS.values() if w.image_command}
    found: list[Deployed] = []
    for concern, template in platform.templates().items():
        dockerfiles = _image_dockerfiles(platform, concern)
        for logical_id, resource in template["Resources"].items():
            props = resource.get("Properties", {})
            where = f"{concern}/{logical_id}"
            if resource["Type"] == "AWS::Lambda::Function":
                environment = _plain(props.get("Environment", {}).get("Variables", {}))
                if props.get("PackageType") == "Image":
                    dockerfile = _dockerfile_of(props["Code"]["ImageUri"], dockerfiles)
                    command = tuple(props.get("ImageConfig", {}).get("Command", ()))
                    workload = by_command.get(command) if command else by_dockerfile.get(dockerfile)
                    assert workload is not None and workload.dockerfile == dockerfile, (
                        f"{where}: image {dockerfile} {command or ''} is not in infra/workloads.py"
                    )
                    found.append(Deployed(where, workload, environment))
                elif str(props.get("Runtime", "")).startswith("python"):
                    handler = props["Handler"]
                    assert handler in by_handler, f"{where}: handler {handler} is not in infra/workloads.py"
                    found.append(Deployed(where, by_handler[handler], environment))
            elif resource["Type"] == "AWS::ECS::TaskDefinition":
                for container in props["ContainerDefinitions"]:
                    dockerfile = _dockerfile_of(container["Image"], dockerfiles)
                    if dockerfile in NON_PYTHON_IMAGES:
                        continue
                    assert dockerfile in by_dockerfile, (
                        f"{where}: image {dockerfile} is not in infra/workloads.py"
                    )
                    variables = {v["Name"]: v["Value"] for v in container.get("Environment", [])}
                    found.append(
                        Deployed(f"{where}/{container['Name']}", by_dockerfile[dockerfile], _plain(variables))
                    )
    return found


_IMPORT = textwrap.dedent(
    """
    import importlib, json, sys, sysconfig
    paths = json.loads(sys.argv[1])
    sys.path[:0] = paths
    module = importlib.import_module(sys.argv[2])
    if sys.argv[3] == "handler" and not callable(getattr(module, "handler", None)):
        sys.exit(f"{sys.argv[2]} has no callable `handler`")
    allowed = (*paths, sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"])
    outside = sorted(
        m.__file__ for m in list(sys.modules.values())
        if getattr(m, "__file__", None) and not m.__file__.startswith(allowed)
    )
    if outside:
        sys.exit(f"imported from outside the bundle: {outside[:5]}")
    """
)


def import_in_clean_interpreter(
    paths: list[Path], module: str, *, lambda_handler: bool, environment: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    """Import `module` in `python -I -S` (no site-packages, no PYTHON* variables) seeing only `paths`."""
    import json

    env = {
        "PATH": os.defpath,
        "HOME": str(cwd),
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        **environment,
    }
    if lambda_handler:  # what the Lambda runtime sets; Powertools' Tracer turns on with it
        env |= {"LAMBDA_TASK_ROOT": str(paths[0]), "AWS_LAMBDA_FUNCTION_NAME": "tekoa-import-check"}
    return subprocess.run(
        [sys.executable, "-I", "-S", "-c", _IMPORT, json.dumps([str(p) for p in paths]), module,
         "handler" if lambda_handler else "module"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip


def bundle_paths(workload: Workload, root: Path) -> list[Path]:
    """The bundle as the interpreter sees it: the sources laid out as in the zip/image, then the
    workload's locked dependency set (cached per lock)."""
    sources = root / "sources"
    lay_out(sources, None, workload.sources)
    return [sources, install_dependencies(workload.extras)]


@pytest.fixture(scope="module")
def deployed(platform: Any, prod_platform: Any) -> list[Deployed]:
    return deployed_processes(platform) + deployed_processes(prod_platform)


def test_every_deployed_python_process_is_a_registry_workload(deployed: list[Deployed]) -> None:
    names = {d.workload.name for d in deployed}
    # The prod profile runs everything the registry has; nothing deployed is missing from it.
    assert names == set(WORKLOADS), names ^ set(WORKLOADS)


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_each_workload_starts_from_its_bundle_alone(
    name: str, deployed: list[Deployed], tmp_path: Path
) -> None:
    workload = WORKLOADS[name]
    environments = [d.environment for d in deployed if d.workload is workload]
    assert environments, f"{name} is in the registry but nothing deploys it"
    paths = bundle_paths(workload, tmp_path)
    for environment in environments:  # each profile's environment
        result = import_in_clean_interpreter(
            paths,
            workload.module,
            lambda_handler=workload.lambda_handler,
            environment=environment,
            cwd=tmp_path,
        )
        assert result.returncode == 0, f"{name} does not start from its bundle:\n{result.stderr[-3000:]}"


def test_a_missing_runtime_dependency_fails_the_check(deployed: list[Deployed], tmp_path: Path) -> None:
    """Control: the API's bundle without aws-xray-sdk (the bug that made every workload crash)."""
    workload = WORKLOADS["api"]
    (environment, *_) = [d.environment for d in deployed if d.workload is workload]
    sources, dependencies = bundle_paths(workload, tmp_path)
    without = tmp_path / "without-xray"
    without.mkdir()
    for entry in dependencies.iterdir():
        if not entry.name.startswith("aws_xray_sdk"):
            (without / entry.name).symlink_to(entry)

    result = import_in_clean_interpreter(
        [sources, without], workload.module, lambda_handler=True, environment=environment, cwd=tmp_path
    )

    assert result.returncode != 0
    assert "No module named 'aws_xray_sdk'" in result.stderr
