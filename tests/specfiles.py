"""Writing mixture specs in tests: `write_spec(tmp_path, '''tasks: ...''')`."""

import textwrap
from pathlib import Path


def write_spec(folder: Path, text: str, name: str = "mixture.yaml") -> Path:
    """`text`, dedented, as the spec file `folder/name`."""
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path
