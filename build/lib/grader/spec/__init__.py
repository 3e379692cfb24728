"""The exercise: what the grader expects. The spec file and its canonical layer lists, the
calibration of the reference models, and the data set served to notebooks. Pure: no TensorFlow."""
