"""Reading YAML safely: plain data only (``SafeLoader``), no aliases (an alias "bomb" of a
few hundred bytes expands to gigabytes), and errors that name the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ..errors import InputError


class _NoAliasLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases (``*name``) instead of expanding them."""

    def compose_node(self, parent, index):  # noqa: ANN001, ANN201 (PyYAML's signature)
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.YAMLError(
                f"line {mark.line + 1}: YAML aliases (*name) are not accepted; write the values out"
            )
        return super().compose_node(parent, index)


def parse_yaml(text: str, where: str) -> Any:
    """The data in YAML ``text`` (plain types only, no aliases).

    Raises:
        ValueError: invalid YAML or an alias, naming ``where`` and the line.
    """
    loader = _NoAliasLoader(text)
    try:
        return loader.get_single_data()
    except yaml.YAMLError as err:
        raise InputError(f"{where}: not valid YAML for frcnn: {err}") from None
    finally:
        loader.dispose()


def read_yaml(path: str | Path) -> Any:
    """The data in a YAML file (see :func:`parse_yaml`)."""
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: cannot read the YAML file ({err})") from None
    return parse_yaml(text, str(path))
