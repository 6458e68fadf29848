"""`nandoc explain`'s body, kept out of the command module (which holds only the commands)."""

from __future__ import annotations

import typer

from nandoc.cli.output import fail
from nandoc.errors import NandocError


def explain(cause: str | None, markdown: bool) -> None:
    """Print a cause's explanation, the index of causes, or the whole catalogue in Markdown."""
    from nandoc.core.causes import CAUSES, get_cause
    from nandoc.render import explain as render_explain

    if cause is None and not markdown:
        typer.echo(render_explain.index(), nl=False)
        return
    if cause is not None:
        try:
            c = get_cause(cause)
        except KeyError:
            fail(NandocError(f"Unknown cause '{cause}'.{render_explain.suggest(cause)} "
                             f"`nandoc explain` with no argument lists the {len(CAUSES)} cause "
                             f"ids."))
    # Which checks detect a cause is the registry's to say, once the check modules are loaded.
    from nandoc.checks import load_all
    from nandoc.core.registry import checks_emitting

    load_all()
    if cause is None:
        by_cause = {cid: checks_emitting(cid) for cid in CAUSES}
        typer.echo(render_explain.markdown(by_cause), nl=False)
        return
    checks = checks_emitting(c.id)
    typer.echo(render_explain.markdown_one(c, checks) if markdown
               else render_explain.text(c, checks), nl=False)

