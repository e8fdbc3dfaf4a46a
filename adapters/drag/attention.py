"""Source-branch key/value control of the UNet's self-attention, installed with ``set_attn_processor``.

During the final denoising, the source latent and the edited latent run as one batch ``[source, edited]``. In the
controlled self-attention layers both rows read the *source* row's keys and values, so the edit keeps the
source's appearance while its queries carry the new layout (MasaCtrl's mutual self-attention, used by
DragDiffusion: ``utils/attn_utils.py: MutualSelfAttentionControl(start_step=0, start_layer=10)``).

Layers are the UNet's self-attention (``attn1``) modules numbered in forward order: down blocks, mid block, up
blocks. The official editor counts every attention call and divides by two (each transformer block has one
self- and one cross-attention), which gives the same numbers; Stable Diffusion 1.5 has 16 (6 down, 1 mid, 9 up),
so ``start_layer=10`` controls the self-attention of ``up_blocks[2]`` and ``up_blocks[3]``.

Only the attention processors change: the UNet's forward and any PEFT LoRA inside its projections stay untouched.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any, Iterator

SECTION_ORDER = {"down_blocks": 0, "mid_block": 1, "up_blocks": 2}


def self_attention_names(unet) -> list[str]:
    """The ``attn1`` processor names of ``unet`` in forward order."""
    names = [name for name in unet.attn_processors if name.endswith("attn1.processor")]

    def order(name: str) -> tuple:
        section = name.split(".", 1)[0]
        return (SECTION_ORDER.get(section, 3), tuple(int(n) for n in re.findall(r"\.(\d+)(?=\.)", name)))

    return sorted(names, key=order)


class SourceKeyValueProcessor:
    """Self-attention whose keys and values come from the batch's first half (the source rows).

    With a batch ``[s_1..s_n, e_1..e_n]`` row ``e_i`` attends over the tokens of ``s_i``, and ``s_i`` over its own
    (unchanged). It hands the source rows to the wrapped processor as ``encoder_hidden_states``, which is exactly
    where a self-attention reads keys and values from; a batch of odd size runs unchanged.
    """

    def __init__(self, base: Any):
        self.base = base

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        batch = hidden_states.shape[0]
        if (encoder_hidden_states is None and batch % 2 == 0 and hidden_states.ndim == 3 and attn.norm_cross is None
                and attn.group_norm is None and attn.spatial_norm is None):
            sources = hidden_states[: batch // 2]
            encoder_hidden_states = sources.repeat(2, 1, 1)
        return self.base(attn, hidden_states, encoder_hidden_states=encoder_hidden_states,
                         attention_mask=attention_mask, temb=temb, **kwargs)


@contextlib.contextmanager
def source_kv_control(unet, start_layer: int) -> Iterator[list[str]]:
    """Within the block, self-attention layers ``start_layer`` and above read the source's keys and values.

    Yields the controlled processor names; the UNet's previous processors are restored on exit.
    """
    original = dict(unet.attn_processors)
    controlled = self_attention_names(unet)[start_layer:]
    patched = {name: SourceKeyValueProcessor(processor) if name in controlled else processor
               for name, processor in original.items()}
    unet.set_attn_processor(patched)
    try:
        yield controlled
    finally:
        unet.set_attn_processor(original)
