"""What a method needs before it can run here (weights, an API key) and whether it is here: ``tvbench ls``.

Looked up cheaply and without any network request: weights in a local folder or in the Hugging Face cache
(``HF_HOME``, through ``huggingface_hub.try_to_load_from_cache``), keys in the environment. Nothing is imported
but the method's own (light) module, so listing stays fast; what only set-up can tell (a gated repository, a LoRA
whose keys do not fit) is still checked there.

A method declares what it needs in two ways:

- the options that name weights, with the file that marks them, at registration
  (``METHODS.register(..., weights={"model": "model_index.json"})``) or as a class attribute
  ``weight_options: ClassVar[dict[str, str]]`` (a plugin); the marker :data:`~tvbench.features.weights.FILE`
  stands for a single file (a LoRA); an option whose default is empty must be given (``--set option=...``);
- the environment variables holding its key, ``key_variables`` (the API editors': the first one set wins).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any, Iterable, Mapping


@dataclass(frozen=True)
class Need:
    """One thing a method needs (``Qwen/Qwen-Image-Edit``, ``key GOOGLE_API_KEY``) and whether it is here."""

    what: str
    ready: bool
    state: str  # "in the HF cache", "not in the HF cache", "not set", ...

    def __str__(self) -> str:
        return f"{self.what} ({self.state})"


def option_defaults(cls: Any) -> dict[str, Any]:
    """A method class's options with their defaults (``default_factory`` called); options without a default are
    left out. Reads the dataclass fields only: nothing is built, no ``__post_init__`` runs."""
    defaults: dict[str, Any] = {}
    if not dataclasses.is_dataclass(cls):
        return defaults
    for field in dataclasses.fields(cls):
        if not field.init:
            continue
        if field.default is not dataclasses.MISSING:
            defaults[field.name] = field.default
        elif field.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            try:
                defaults[field.name] = field.default_factory()  # type: ignore[misc]
            except Exception:  # a factory that needs more than nothing is not a default ls can show
                pass
    return defaults


def weights_need(option: str, spec: Any, marker: str) -> Need:
    """The weights option ``option`` names by default: here or not (:func:`tvbench.features.weights.weights_here`)."""
    from tvbench.features.weights import weights_here

    if not isinstance(spec, str) or not spec.strip():
        return Need(option, False, f"required: --set {option}=...")
    ready, state = weights_here(spec, marker)
    return Need(spec, ready, state)


def key_need(variables: Iterable[str]) -> Need:
    """An API key from the first of ``variables`` set in the environment."""
    variables = tuple(variables)
    for variable in variables:
        if os.environ.get(variable, "").strip():
            return Need(f"key {variable}", True, "set")
    return Need(f"key {' or '.join(variables)}", False, "not set")


def method_needs(cls: Any, weights: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> list[Need]:
    """What method class ``cls`` needs with its default options: the weights its ``weights`` options name
    (registration's, else the class's ``weight_options``) and its key."""
    declared = dict(weights) or dict(getattr(cls, "weight_options", {}) or {})
    defaults = option_defaults(cls)
    needs = [weights_need(option, defaults.get(option), marker) for option, marker in declared.items()
             if option in defaults]
    variables = tuple(getattr(cls, "key_variables", ()) or ())
    if variables:
        needs.append(key_need(variables))
    return needs
