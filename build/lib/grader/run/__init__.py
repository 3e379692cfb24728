"""Running a notebook: the sandbox around its kernel and the execution of its cells behind
the instrumentation. What the run produced is left in a facts folder, untrusted."""
