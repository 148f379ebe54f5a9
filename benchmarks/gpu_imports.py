"""Rehearse the GPU check here with only the packages the GPU machine will have.

The GPU machine's image holds torch and many packages, but not the service's; those
travel as the wheels of benchmarks/gpu_wheels.txt. This runs benchmarks/gpu_check.py on
CPU (``--quick``) with an import blocker in every Python process it starts (the check,
its ``cellsearch worker`` processes, pytest): a top-level import whose distribution is
neither on the image (:data:`IMAGE`, as the device library listed it on 2026-11-17) nor
in the wheel list fails as a missing module would there, and is logged. Two runs:

1. parts a, b and d with the image's packages alone (they must need torch alone);
2. every part with the image's packages and the wheels.

Run from the repository root (any Python version: only names are compared)::

    PYTHONPATH=src python benchmarks/gpu_imports.py

The exit status is 0 when both runs pass (``info`` counts: nothing is judged on CPU).
Blocked imports are listed; one a library only tries (an optional dependency) is harmless
when the runs pass.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.metadata
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent
ROOT = BENCHMARKS.parent
FIRST_PARTY = {"cellsearch", "tests", "conftest"}
# the packages of the GPU machine's image, as the device library listed them on 2026-11-17
_IMAGE_TEXT = """
    absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs
    botorch build certifi charset-normalizer chex click cloudpickle cmake colorama contourpy
    coverage cuda-bindings cuda-core cuda-pathfinder cuda-toolkit cupy-cuda13x cycler cython
    diffrax e3nn einops equinox etils execnet filelock flatbuffers flax fonttools formulaic
    frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx huggingface-hub
    humanize hypothesis idna imageio iniconfig interface-meta jax jax-cuda13-pjrt
    jax-cuda13-plugin jaxlib jaxtyping jinja2 joblib kiwisolver lazy-loader lightning
    lightning-utilities linear-operator lineax llvmlite lxml markdown markdown-it-py
    markupsafe matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack multidict
    multipledispatch mypy-extensions nanobind narwhals networkx ninja numba numba-cuda numpy
    numpyro nvidia-cublas nvidia-cuda-cupti nvidia-cuda-nvrtc nvidia-cuda-runtime
    nvidia-cudnn-cu13 nvidia-cufft nvidia-cufile nvidia-curand nvidia-cusolver
    nvidia-cusparse nvidia-cusparselt-cu13 nvidia-ml-py nvidia-nccl-cu13 nvidia-nvjitlink
    nvidia-nvshmem-cu13 nvidia-nvtx onnx onnx-ir onnxruntime onnxscript
    opencv-python-headless optax opt-einsum opt-einsum-fx optimistix orbax-checkpoint
    packaging pandas pathspec patsy peft pillow pip pluggy portalocker prometheus-client
    propcache protobuf psutil pyarrow pybind11 py-cpuinfo pygments pyparsing pyproject-hooks
    pyre-extensions pytest pytest-benchmark pytest-cov pytest-mock pytest-timeout
    pytest-xdist python-dateutil pytorch-lightning pyyaml regex requests rich sacrebleu
    safetensors scikit-build-core scikit-image scikit-learn scipy seaborn sentencepiece
    sentence-transformers setuptools shellingham simplejson six sortedcontainers statsmodels
    sympy tabulate tensorboard tensorboard-data-server tensorstore threadpoolctl tifffile
    tiktoken timm tokenizers toolz torch torchaudio torchdiffeq torch-geometric torchmetrics
    torchvision tqdm transformers treescope triton typer typing-extensions typing-inspect
    urllib3 uvloop wadler-lindig werkzeug wheel wrapt xarray xxhash yarl zipp
"""
IMAGE = _IMAGE_TEXT.split()


def normalize(name: str) -> str:
    """A distribution name in its canonical form (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def wheel_names() -> list[str]:
    """The distributions of benchmarks/gpu_wheels.txt."""
    lines = (BENCHMARKS / "gpu_wheels.txt").read_text().splitlines()
    return [line.split("==")[0].strip() for line in lines if line.strip() and line[0] != "#"]


class Blocker(importlib.abc.MetaPathFinder):
    """Refuses top-level imports from distributions outside an allowed set."""

    def __init__(self, allowed: set[str], log: str | None) -> None:
        self.allowed = allowed
        self.log = log
        self.owners = importlib.metadata.packages_distributions()
        self.decided: dict[str, bool] = {}

    def find_spec(self, name: str, path: Sequence[str] | None, target: object = None) -> None:
        top = name.partition(".")[0]
        if self.decided.setdefault(top, self._allowed(top)):
            return None  # let the normal finders find it
        owners = ", ".join(self.owners.get(top, []))
        if self.log:
            with open(self.log, "a") as file:
                file.write(f"{top} ({owners})\n")
        raise ModuleNotFoundError(
            f"{name} ({owners}) is neither on the GPU image nor in gpu_wheels.txt", name=name
        )

    def _allowed(self, top: str) -> bool:
        if top in sys.stdlib_module_names or top in FIRST_PARTY:
            return True
        owners = self.owners.get(top)
        if not owners:  # no distribution: a module of this checkout (benchmarks/*.py)
            return True
        return any(normalize(owner) in self.allowed for owner in owners)


def install() -> None:
    """Put a :class:`Blocker` first on ``sys.meta_path`` (from sitecustomize)."""
    allowed = {normalize(n) for n in os.environ["GPU_IMPORTS_ALLOWED"].split(",")}
    sys.meta_path.insert(0, Blocker(allowed, os.environ.get("GPU_IMPORTS_LOG")))


def rehearse(allowed: list[str], parts: str, folder: Path) -> tuple[int, list[str]]:
    """Run the check's parts with the blocker; its exit status and the blocked imports."""
    site = folder / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(
        f"import sys\nsys.path.append({str(BENCHMARKS)!r})\n"
        "import gpu_imports\ngpu_imports.install()\n"
    )
    log = folder / f"blocked-{parts.replace(',', '')}.log"
    paths = [str(site), str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p),
           "GPU_IMPORTS_ALLOWED": ",".join(allowed), "GPU_IMPORTS_LOG": str(log)}  # fmt: skip
    out = folder / f"report-{parts.replace(',', '')}.md"
    command = [sys.executable, str(BENCHMARKS / "gpu_check.py"), "--device", "cpu", "--quick",
               "--parts", parts, "--out", str(out)]  # fmt: skip
    status = subprocess.run(command, cwd=ROOT, env=env, check=False).returncode
    blocked = sorted(set(log.read_text().splitlines())) if log.exists() else []
    return status, blocked


def main() -> int:
    """Both rehearsals; 0 when both pass."""
    failed = False
    with tempfile.TemporaryDirectory(prefix="gpu-imports-") as tmp:
        runs = (("image only", IMAGE, "a,b,d"), ("image and wheels", IMAGE + wheel_names(),
                "a,b,c,d,e,t"))  # fmt: skip
        for label, allowed, parts in runs:
            status, blocked = rehearse(allowed, parts, Path(tmp))
            print(f"\n== {label}, parts {parts}: exit {status}; blocked imports: "
                  f"{', '.join(blocked) or 'none'}", flush=True)  # fmt: skip
            failed = failed or status != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
