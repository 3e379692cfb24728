"""Tools on top of the grader that train reference models: calibration of the accuracy
ranges and the training-speed bench. They import TensorFlow."""
