"""The controller's tensors, listed from a meta-device build (nothing allocated), for ``tvbench tvedit layout``."""

from __future__ import annotations

from typing import Iterator

from tvbench_adapters.tvedit.spec import ControllerSpec, backbone_config


def layout_spec(backbone: str, blocks: int, injections: int) -> ControllerSpec:
    """The controller of the real backbone (its transformer config ships in this package)."""
    return ControllerSpec.for_backbone(backbone_config(backbone), backbone, blocks=blocks, injections=injections)


def tensor_rows(spec: ControllerSpec) -> Iterator[tuple[str, str, tuple[int, ...]]]:
    """``(dict, name, shape)`` for every tensor, in state-dict order: ``point_encoder`` then ``casc``."""
    from tvbench_adapters.tvedit.controller import build_controller

    controller = build_controller(spec, device="meta")
    for part, state in controller.state_dicts().items():
        for name, tensor in state.items():
            yield part, name, tuple(tensor.shape)


def format_layout(rows: list[tuple[str, str, tuple[int, ...]]]) -> list[str]:
    """One ``<dict>\\t<name>\\t<shape>`` line per tensor, then ``total <parameters>``."""
    lines = [f"{part}\t{name}\t{shape}" for part, name, shape in rows]
    total = 0
    for _, _, shape in rows:
        count = 1
        for size in shape:
            count *= size
        total += count
    lines.append(f"total {total}")
    return lines
