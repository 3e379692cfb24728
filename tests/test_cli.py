"""The command line's own failures: exit 3 with a message that says what to do."""

import subprocess
import sys

from click.testing import CliRunner

from grader.cli import cli


def invoke(*args, env=None):
    return CliRunner().invoke(cli, list(args), env=env)


def test_nothing_to_grade_exits_3(tmp_path):
    outcome = invoke("grade", str(tmp_path), "--quick")
    assert outcome.exit_code == 3
    assert "nothing to grade: no .ipynb files" in outcome.output


def test_no_data_exits_3_naming_both_ways_to_provide_it(tmp_path):
    (tmp_path / "a.ipynb").write_text("{}")
    outcome = invoke("grade", str(tmp_path), "--quick", "--data", str(tmp_path / "missing.npz"))
    assert outcome.exit_code == 3
    assert "--data" in outcome.output and "no such file" in outcome.output


def test_a_broken_spec_exits_3(tmp_path):
    (tmp_path / "a.ipynb").write_text("{}")
    spec = tmp_path / "spec.toml"
    spec.write_text("[exercise]\nname = 'x'\n")
    outcome = invoke("grade", str(tmp_path), "--quick", "--spec", str(spec))
    assert outcome.exit_code == 3
    assert "missing key 'data'" in outcome.output


def test_bad_arguments_exit_2():
    assert invoke("grade").exit_code == 2
    assert invoke("grade", "x", "--timeout", "0").exit_code == 2
    assert invoke("grade", "x", "--jobs", "0").exit_code == 2
    assert invoke("bench", "--model", "model_9").exit_code == 2


def test_an_address_without_ray_is_a_usage_error(tmp_path):
    (tmp_path / "a.ipynb").write_text("{}")
    outcome = invoke("grade", str(tmp_path), "--address", "ray://head:10001")
    assert outcome.exit_code == 2 and "--address needs --executor ray" in outcome.output


def test_strict_sandbox_refuses_a_machine_without_every_layer(tmp_path, monkeypatch, mnist_path):
    import grader.judge.pipeline
    from grader.run.isolation import Isolation

    monkeypatch.setattr(grader.judge.pipeline, "probe_isolation", lambda: Isolation(None, True, True, None, None))
    (tmp_path / "a.ipynb").write_text("{}")
    outcome = invoke("grade", str(tmp_path), "--quick", "--strict-sandbox", "--data", str(mnist_path))
    assert outcome.exit_code == 3
    assert "--strict-sandbox: this machine lacks bubblewrap" in outcome.output
    assert "apt-get install bubblewrap" in outcome.output


def test_a_backend_not_installed_exits_3_saying_which_extra_installs_it(tmp_path, monkeypatch):
    import grader.run.backends

    monkeypatch.setattr(grader.run.backends, "installed_backends", lambda: ["tensorflow"])
    (tmp_path / "a.ipynb").write_text("{}")
    outcome = invoke("grade", str(tmp_path), "--quick", "--backend", "torch")
    assert outcome.exit_code == 3
    # The extra's brackets are text, not console markup.
    assert "'torch' is not installed here (installed: tensorflow)" in outcome.output
    assert "pip install 'keras-exercise-grader[torch]'" in outcome.output


def test_the_command_line_starts_without_compiling_rfc3987s_grammar_and_a_kernel_keeps_it():
    """jsonschema compiles rfc3987_syntax's grammar as it is imported: seconds at every start."""
    probe = "import sys; {}import grader.cli; print(sys.modules.get('rfc3987_syntax', 'absent'))"
    host = subprocess.run([sys.executable, "-c", probe.format("")], capture_output=True, text=True, check=True)
    assert host.stdout.strip() == "None"
    # In a kernel, where ipykernel comes first, a notebook may still import it.
    kernel = subprocess.run(
        [sys.executable, "-c", probe.format("import ipykernel.kernelapp; ")], capture_output=True, text=True, check=True
    )
    assert kernel.stdout.strip() != "None"
