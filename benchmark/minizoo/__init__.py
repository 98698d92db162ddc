"""The miniature zoo: a deterministic synthetic image-text world, tiny open_clip models trained on
different mixtures of it, and the pipeline that turns them into the ``minizoo`` protocol."""
