"""What the flows ask of the prompt layer: their prompt texts by id and dialect, and their dialects.

The one place that reads flow files for `ivr.voice`. `ivr.flow` is being written concurrently and has
no loader yet, so this reads the documented top-level keys of `flows/*.yaml` with PyYAML:

```yaml
dialects: [cmn, yue, hak, nan, wuu, en]      # or `languages:`; a list or a mapping keyed by code
default_dialect: cmn
prompts:
  greeting: {cmn: "您好...", en: "Hello..."}  # a plain string is the default dialect's text
```

Switch `load_flow_prompts` to `ivr.flow`'s loader once it exists; nothing else needs to change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ivr.voice.errors import FlowPromptsError


@dataclass(slots=True, frozen=True)
class FlowPrompts:
    """One flow's prompts as the voice layer needs them."""

    name: str
    path: Path | None
    dialects: tuple[str, ...]
    """Dialects the flow serves; empty means every loaded dialect pack."""
    texts: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """Prompt id → dialect code → text (with `{placeholders}`)."""


def _codes(value: Any) -> tuple[str, ...]:
    if isinstance(value, Mapping):
        return tuple(str(k) for k in value)
    if isinstance(value, list):
        return tuple(str(v["code"]) if isinstance(v, Mapping) and "code" in v else str(v) for v in value)
    return (str(value),) if isinstance(value, str) else ()


def flow_prompts_from_mapping(data: Mapping[str, Any], name: str, path: Path | None = None) -> FlowPrompts:
    """The prompt-related keys of one parsed flow document."""
    where = str(path or name)
    dialects = _codes(data.get("dialects") or data.get("languages") or ())
    default = str(data.get("default_dialect") or (dialects[0] if dialects else "cmn"))
    raw = data.get("prompts") or {}
    if not isinstance(raw, Mapping):
        raise FlowPromptsError(f"{where}: 'prompts' must map prompt ids to texts by dialect")
    texts: dict[str, dict[str, str]] = {}
    for prompt_id, by_dialect in raw.items():
        if isinstance(by_dialect, str):
            texts[str(prompt_id)] = {default: by_dialect}
        elif isinstance(by_dialect, Mapping) and all(isinstance(t, str) for t in by_dialect.values()):
            texts[str(prompt_id)] = {str(code): text for code, text in by_dialect.items()}
        else:
            raise FlowPromptsError(
                f"{where}: prompt '{prompt_id}' must be a text or a mapping dialect → text"
            )
    return FlowPrompts(str(data.get("id") or name), path, dialects, texts)


def load_flow_prompts(flows_dir: Path) -> tuple[FlowPrompts, ...]:
    """Every `*.yaml`/`*.yml` flow directly in `flows_dir` (subfolders such as `tests/` are not flows)."""
    if not flows_dir.is_dir():
        raise FlowPromptsError(f"{flows_dir}: no such flows folder")
    out: list[FlowPrompts] = []
    for path in sorted([*flows_dir.glob("*.yaml"), *flows_dir.glob("*.yml")]):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark
            where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
            raise FlowPromptsError(f"{where}: YAML syntax error: {exc.problem}") from None
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise FlowPromptsError(f"{path}: cannot read flow: {exc}") from None
        if not isinstance(data, Mapping):
            raise FlowPromptsError(f"{path}: a flow file must be a mapping")
        out.append(flow_prompts_from_mapping(data, path.stem, path))
    return tuple(out)
