"""The table of the spec's keys is the loader's: a key it does not list is refused, naming the
known ones, in every section; and the reference the documentation shows lists every key."""

import pytest

from grader.errors import SpecError
from grader.spec.exercise import CHECK_KINDS, DEFAULT_SPEC, load_spec
from grader.spec.keys import SECTIONS, SPEC_KEYS, TABLES, keys_markdown, keys_of
from tests.conftest import ROOT
from tests.spec.test_exercise import write_spec


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda s: s.replace("[data]\n", "[data]\nflaten = true\n"), r"\[data\] has unknown keys \['flaten'\]"),
        (lambda s: s.replace("[exercise]\n", "[exercise]\nhandot = 'x'\n"), r"\[exercise\] has unknown keys"),
        (lambda s: s.replace("margin = 0.01", "margin = 0.01\nmargins = 1"), r"\[accuracy\] has unknown keys"),
        (lambda s: s.replace("batch_size = 128", "batchsize = 128", 1), r"\[defaults\] has unknown keys"),
        (lambda s: s.replace('name = "model_2"', 'name = "model_2"\nepoch = 3'), r"\[\[models\]\] model_2 has"),
        (lambda s: s + "\n[grading]\nstrict = true\n", r"unknown tables \['grading'\]"),
    ],
)
def test_a_key_the_table_does_not_list_is_refused_naming_the_known_ones(tmp_path, mutate, where):
    with pytest.raises(SpecError, match=where) as refused:
        load_spec(write_spec(tmp_path, mutate(DEFAULT_SPEC.read_text())))
    assert "known: [" in str(refused.value)


@pytest.mark.parametrize("path", sorted((ROOT / "reference").glob("*.toml")), ids=lambda path: path.name)
def test_every_shipped_spec_loads_its_keys_all_in_the_table(path):
    assert load_spec(path).models


def test_defaults_reach_the_models_and_the_points_are_the_checks():
    assert load_spec(DEFAULT_SPEC).model("model_3").batch_size == 128
    assert CHECK_KINDS == ("architecture", "params", "optimizer", "training", "accuracy")
    assert keys_of("points") == set(CHECK_KINDS)
    assert {key.section for key in SPEC_KEYS} == set(SECTIONS) == {*TABLES, "rubric"}
    assert keys_of("defaults") == keys_of("models")


def test_losses_alone_stand_for_loss(tmp_path):
    """`losses` instead of `loss`, as the table says, with no [defaults] loss to fall back on."""
    text = DEFAULT_SPEC.read_text()
    assert 'loss = "categorical_crossentropy"' in text
    text = text.replace('loss = "categorical_crossentropy"', "", 1)
    text = text.replace('name = "model_1"', 'name = "model_1"\nlosses = ["categorical_crossentropy", "kl_divergence"]')
    text = text.replace('name = "model_2"', 'name = "model_2"\nloss = "categorical_crossentropy"')
    text = text.replace('name = "model_3"', 'name = "model_3"\nloss = "categorical_crossentropy"')
    spec = load_spec(write_spec(tmp_path, text))
    assert spec.model("model_1").losses == ("categorical_crossentropy", "kl_divergence")
    assert spec.model("model_2").losses == ("categorical_crossentropy",)


def test_the_reference_lists_every_key_under_its_section():
    listed: dict[str, set[str]] = {}
    for part in keys_markdown().split("## ")[1:]:
        title, *lines = part.splitlines()
        listed[title.strip("`")] = {line.split(" | ")[0].removeprefix("| ").strip("`") for line in lines[3:] if line}
    assert listed == {
        title: {key.name for key in SPEC_KEYS if key.section == section} for section, title in SECTIONS.items()
    }
