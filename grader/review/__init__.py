"""Grading the written answers by hand, question by question: the grades kept in the batch's
store (``marks``), answer groups (``groups``), a spreadsheet round trip (``sheet``) and the
local web app of ``grader review`` (``app``)."""
