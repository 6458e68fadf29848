"""Custom layers traced op by op on their real input batches.

For every layer whose class comes from the user's custom_objects files, the model is cut at
that layer's input, the selected real batches are fed through, and the layer's own call is
traced and evaluated op by op, value and gradient (nandoc.instrument.graph_probe). A non-finite
value or gradient born inside the layer is reported at the op and the user's source line;
static suspects on lines the trace ran without harm are cleared.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from nandoc.config import Config
from nandoc.core.causes import CAUSES
from nandoc.core.evidence import plural, rows_phrase
from nandoc.core.finding import Finding, Location, Severity
from nandoc.core.registry import check
from nandoc.instrument.batches import select_batches
from nandoc.instrument.graph_probe import probe
from nandoc.instrument.model_graph import walk_layers
from nandoc.instrument.opcauses import MEANING, cause_of
from nandoc.loading.custom_objects import SourceFile
from nandoc.loading.custom_objects import display_path as _display
from nandoc.loading.dataset import Dataset
from nandoc.loading.named import feed

MAX_BATCHES = 4


def _user_layers(model: Any, sources: list[SourceFile]) -> Iterator[tuple[str, Any, str]]:
    classes = {obj for s in sources for obj in s.objects.values() if inspect.isclass(obj)}
    for path, layer in walk_layers(model):
        if type(layer) in classes:
            yield path, layer, inspect.getsourcefile(type(layer)) or ""


@check(id="step-custom-layer-ops", needs=("model", "data", "sources"), wants=("config",),
       causes=("unclipped-log", "division-by-zero", "sqrt-at-zero", "exp-overflow"))
def custom_layer_ops(model: Any, data: Dataset, sources: list[SourceFile],
                     config: Config | None):
    """Custom layers traced op by op on their real input batches."""
    import keras

    batch_size = config.train.batch_size if config is not None else 32
    seed = config.train.seed if config is not None else 0
    batches = select_batches(data.train, batch_size, seed)[:MAX_BATCHES]
    files = [str(s.path) for s in sources]
    for path, layer, _file in _user_layers(model, sources):
        try:
            feeder = keras.Model(model.inputs, layer.input)
        except Exception:  # inside a nested model or a wrapper: not reachable from the inputs
            continue
        seen: dict[tuple, Finding] = {}
        for batch in batches:
            x_in = np.asarray(feeder(feed(batch.x), training=False), dtype=np.float32)
            result = probe(lambda t, layer=layer: layer(t), [x_in], files)
            if not result.traced:
                continue
            hits = list(result.forward_roots) if not result.value_finite else []
            hits += list(result.backward_roots)
            for hit in hits:
                cause = cause_of(hit)
                if cause is None or hit.where is None:
                    continue
                key = (cause, hit.where.file, hit.where.line)
                if key in seen:
                    continue
                rows = [int(batch.rows[i]) for i in hit.rows if i < batch.n]
                phase = "value" if hit.phase == "forward" else "gradient"
                shown = _display(hit.where.file, sources)
                seen[key] = Finding(
                    cause=cause, severity=Severity.ERROR, confidence=0.9,
                    title=f"{hit.op_type} in custom layer '{path}' turns the {phase} "
                          f"non-finite at {Path(shown).name}:{hit.where.line}",
                    evidence=(f"On batch '{batch.name}' ({batch.why}), the layer's own ops, "
                              f"traced and evaluated one by one on its real input, give "
                              f"{hit.kinds} in the {phase} at {hit.op_type} "
                              f"(`{hit.where.text}`) for "
                              f"{plural(len(rows) or batch.n, 'sample')}"
                              + (f", {rows_phrase(rows)}" if rows else "")
                              + f". {MEANING.get(cause, '')}."),
                    location=Location(kind="layer", layer=path, name=type(layer).__name__,
                                      file=shown, line=hit.where.line, op=hit.op_type,
                                      rows=tuple(rows[:10]) or None),
                    fix=CAUSES[cause].fix,
                    measured={"batch": batch.name, "rows": rows, "phase": phase},
                )
        yield from seen.values()
