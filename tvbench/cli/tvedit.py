"""``tvbench tvedit layout``: the TV-Edit controller's tensors and parameter count for a real backbone."""

from __future__ import annotations

import typer

from tvbench.cli.app import app, say

tvedit_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None,
                         short_help="Inspect the TV-Edit controller's weights.",
                         help="The TV-Edit controller (paper Sec. 3.3): layouts of its weights.")
app.add_typer(tvedit_app, name="tvedit")


@tvedit_app.command("layout")
def layout(
    blocks: int = typer.Option(5, "--blocks", "-n", help="Controller blocks N (paper default 5)."),
    injections: int = typer.Option(15, "--injections", "-k",
                                   help="Injection heads K (default 15; the paper's text says 3N)."),
    backbone: str = typer.Option("qwen", "--backbone", help="qwen (Qwen-Image-Edit) or kontext (FLUX.1 Kontext)."),
) -> None:
    """Print one `<dict>\\t<name>\\t<shape>` line per tensor, then `total <parameters>` (built on the meta device)."""
    from tvbench_adapters.tvedit.injection import used_injections
    from tvbench_adapters.tvedit.layout import format_layout, layout_spec, tensor_rows

    spec = layout_spec(backbone, blocks, injections)
    for line in format_layout(list(tensor_rows(spec))):
        typer.echo(line)
    used = used_injections(spec.main_blocks, spec.injections)
    if used < spec.injections:
        say(f"note: with {spec.main_blocks} backbone blocks and K={spec.injections}, the rule i // ceil(N_main / K) "
            f"uses only {used} of the {spec.injections} heads")
