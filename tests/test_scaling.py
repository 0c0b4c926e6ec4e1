"""The scale-out recipes of docs/scaling.md, run: the Ray one on a local Ray instance."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "scaling.md"
SPEC = """
seed: 5
tasks:
  - {task: customjson, path: identity.jsonl, repeat: 2}
  - {task: spellingbee, split: train, size: 40, word_list: words.txt}
"""


def ray_recipe() -> str:
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.S)
    recipe = [block for block in blocks if "import ray" in block]
    assert len(recipe) == 1, "docs/scaling.md should hold one Ray recipe"
    return recipe[0]


def pointed_at(recipe: str, folder: Path, shards: int) -> str:
    """The recipe with its constants set for this machine, and Ray kept small and quiet."""
    values = {
        "SPEC": repr(str(folder / "mixture.yaml")),
        "DATA_DIR": "None",
        "PARTS": repr(str(folder / "parts")),
        "SHARDS": str(shards),
    }
    for name, value in values.items():
        recipe, count = re.subn(rf"^{name} = .*$", f"{name} = {value}", recipe, flags=re.M)
        assert count == 1, f"the recipe has no {name} constant"
    local = "ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)"
    assert recipe.count("ray.init()") == 1
    return recipe.replace("ray.init()", local)


def test_the_ray_recipe_writes_parts_that_join_into_the_whole_export(tmp_path):
    pytest.importorskip("ray", reason="Ray comes with the test extra")
    for name in ("identity.jsonl", "words.txt"):
        (tmp_path / name).write_bytes((ROOT / "examples" / name).read_bytes())
    (tmp_path / "mixture.yaml").write_text(SPEC)
    (tmp_path / "parts").mkdir()
    script = tmp_path / "recipe.py"
    script.write_text(pointed_at(ray_recipe(), tmp_path, shards=3))
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "RAY_AUTH_MODE": "disabled",  # no token written to the home folder
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    if done.returncode != 0 and "Failed to start" in done.stderr:
        pytest.skip(f"Ray cannot start a local instance here: {done.stderr[-500:]}")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("rows in 3 parts")
    parts = sorted((tmp_path / "parts").glob("train-*-of-00003.jsonl"))
    assert [p.name for p in parts] == [f"train-{k:05d}-of-00003.jsonl" for k in (1, 2, 3)]
    whole = subprocess.run(
        [sys.executable, "-m", "taskcli", "export", "mixture.yaml", "-o", "whole.jsonl"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert whole.returncode == 0, whole.stderr
    joined = b"".join(part.read_bytes() for part in parts)
    assert joined == (tmp_path / "whole.jsonl").read_bytes()
    assert joined.count(b"\n") == 2 * 36 + 40
