"""Making an exercise from its author's solution notebook (``grader new``): the handout
students start from (``handout``)."""
