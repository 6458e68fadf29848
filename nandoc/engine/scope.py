"""What a run of these inputs cannot cover, said in the report so that a clean verdict is never
read as covering it: the model when none was named, its loss when it has none, the data."""

from __future__ import annotations

from nandoc.engine.inputs import Inputs


def not_checked(inputs: Inputs, command: str) -> tuple[str, ...]:
    out = []
    api = command == "diagnose"
    if inputs.model is None:
        out.append("the model: no [model] path or MODEL argument was given, so only the data "
                   "was checked; name the model to check it, its loss and a training burst")
    elif not inputs.loss:
        if api and getattr(inputs.model, "optimizer", None) is None:
            why = ("the model is not compiled and no loss= was given, so the loss checks did "
                   "not run; pass diagnose(..., loss=...) or compile the model first")
        elif getattr(inputs.model, "optimizer", None) is None:
            why = ("the model was saved without compile(), so the loss checks and the training "
                   "burst did not run; call model.compile(optimizer=..., loss=...) before "
                   "model.save() to have them checked")
        else:
            why = ("the model was compiled without a loss (loss=None: it computes its own), so "
                   "the loss checks and the training burst did not run")
        out.append(f"the loss: {why}")
    if inputs.data is None and not api:
        out.append("the data: no [data] path, [data] source or DATA argument was given, so the "
                   "data checks, the layer passes on real batches and the training burst did "
                   "not run; name the data to check them")
    return tuple(out)
