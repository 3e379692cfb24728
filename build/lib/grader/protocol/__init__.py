"""The trust boundary: what the grader and the instrumentation in the student's kernel share.

The kernel side (``grader.kernel``) and the host side (everything else) import
nothing from each other; they agree only on what is defined here: the settings
the grader hands the kernel, the code of the cells that install and finish the
instrumentation, the files the kernel exports (``manifest``), and pure helpers
both sides need (row fingerprints, descriptions of live Keras objects, atomic
writes). Nothing here imports TensorFlow or Keras at import time.
"""
