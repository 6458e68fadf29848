"""`nandoc init`: look at the model and data files in a folder and write a commented nandoc.toml.

`plan` decides (which files, the target, the window, the validation split, the custom objects),
reading the saved model through `nandoc.loading` without importing TensorFlow or running any of
the user's code; `pyfiles` parses the folder's .py files (never imports them) to decide which
may be listed under custom_objects: only those that define a name the model needs and run no
code when imported; `shardsets` finds CSV or parquet shards that are one table (numbered files
here, a subfolder of them) and proposes them as a glob; `toml` writes the decisions down, each
with the reason it was made.
"""

from nandoc.init.plan import ModelFacts, Plan, guess_target, plan, read_model_facts
from nandoc.init.toml import render_toml, summary, write_config

__all__ = ["ModelFacts", "Plan", "guess_target", "plan", "read_model_facts", "render_toml",
           "summary", "write_config"]
