"""Where instructors grade: the autograder platforms that run the grader per submission
(Gradescope, PrairieLearn, GitHub classrooms), each an entry point that reads the platform's
layout and writes its results file, and the exports that set a course up on it."""
