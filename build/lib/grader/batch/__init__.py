"""Many notebooks: where they are graded (this process, local workers, a Ray cluster), the
results store that makes a batch resumable, and the batch loop itself."""
