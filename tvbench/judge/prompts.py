"""Judge prompts: one versioned text file per prompt under ``prompts/``; a result records the id and the file's sha256.

A prompt's id is its file name without ``.txt`` (``pf-v1``). Its text is sent after the images, with
``{{instruction}}`` replaced by the case's instruction in quotes. Editing a prompt means adding a new file with a
new version (``pf-v2``), so the id always names one text; the sha256 catches edits made in place anyway.
What the images are (their number and order) is fixed by the prompt's ``layout``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from tvbench.errors import ConfigError
from tvbench.io import sha256_hex

PROMPT_DIR = Path(__file__).parent / "prompts"
PLACEHOLDER = "{{instruction}}"
NO_INSTRUCTION = "(none given: the arrows alone say what to change)"

# image layouts: the roles of the images sent, in order
WITH_TARGET = ("source", "target", "edit")
WITH_ARROWS = ("source", "source+arrows", "edit")


@dataclass(frozen=True)
class Prompt:
    id: str
    text: str
    sha256: str
    layout: tuple[str, ...]

    def render(self, instruction: str | None) -> str:
        value = f'"{instruction.strip()}"' if instruction and instruction.strip() else NO_INSTRUCTION
        return self.text.replace(PLACEHOLDER, value)

    def describe(self) -> dict:
        return {"id": self.id, "sha256": self.sha256, "images": list(self.layout)}


def available_prompts() -> list[str]:
    return sorted(path.stem for path in PROMPT_DIR.glob("*.txt"))


@lru_cache(maxsize=None)
def load_prompt(prompt_id: str, folder: str | None = None) -> Prompt:
    """The prompt ``prompt_id`` from the packaged folder (or ``folder``): text, sha256 and image layout."""
    path = Path(folder or PROMPT_DIR) / f"{prompt_id}.txt"
    if not path.is_file():
        raise ConfigError(f"judge prompt {prompt_id!r} not found in {path.parent} "
                          f"(available: {', '.join(available_prompts())})")
    data = path.read_bytes()
    text = data.decode("utf-8")
    if PLACEHOLDER not in text:
        raise ConfigError(f"judge prompt {path}: has no {PLACEHOLDER} placeholder")
    layout = WITH_ARROWS if "-drag-" in prompt_id else WITH_TARGET
    return Prompt(prompt_id, text, sha256_hex(data), layout)
