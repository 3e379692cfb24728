"""One epoch of each reference model, trained as the exercise's notebook writes it:
with plain Keras, and through the grader's instrumentation (its acceleration
included). Run with `tox -e bench`; the default test run skips benchmarks."""

import pytest

from grader.run.backends import choose_backend
from grader.spec.datasets import load_dataset
from grader.tools.bench import fit_as_written, instrumented
from grader.tools.reference_models import compiled_reference, training_arrays

pytestmark = pytest.mark.kernel
MODELS = ["model_1", "model_2", "model_3"]


@pytest.fixture(scope="module")
def arrays(mnist_path, spec):
    return training_arrays(spec, load_dataset(mnist_path, spec.data), spec.model("model_1"))  # one-hot, as all three


def bench_epoch(benchmark, spec, arrays, name):
    model_spec = spec.model(name)
    model = compiled_reference(model_spec, spec, arrays[0])
    # The warm-up epoch builds the graph; each measured round is one more epoch.
    benchmark.pedantic(fit_as_written, args=(model, model_spec, arrays, 1, []), rounds=3, iterations=1, warmup_rounds=1)


@pytest.mark.parametrize("name", MODELS)
def test_epoch_with_plain_keras(benchmark, spec, arrays, name):
    bench_epoch(benchmark, spec, arrays, name)


@pytest.mark.parametrize("name", MODELS)
def test_epoch_through_the_grader(benchmark, spec, arrays, mnist_path, name):
    with instrumented(spec, mnist_path, choose_backend()):
        bench_epoch(benchmark, spec, arrays, name)
