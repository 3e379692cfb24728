"""The grader's own measurement of a student's models: a process with trust rules of its own.

``evaluate`` (the host side) reads what a kernel exported as hostile input (``untrusted``),
checks each model's config against the allowlist and bounds (``model_config``, ``limits``)
and hands it to ``evaluator``, a process in a sandbox of its own that rebuilds the model
(``rebuild``), prepares the test rows as the notebook prepared its own (``preprocessing``)
and measures it. ``grader.judge`` turns the measurements into checks.
"""
