"""From untrusted facts to a grade: read what the kernel exported, re-measure each model in
a process of the grader's own, check, score. ``pipeline.grade_notebook`` is the whole stage."""
