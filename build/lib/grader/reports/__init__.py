"""Results out: the HTML pages of each submission and of the class, their plots, and the
CSV gradebooks. Inputs are plain results; nothing here runs a notebook."""
