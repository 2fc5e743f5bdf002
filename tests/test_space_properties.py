"""Property-based tests of the search-space loader: whatever the input, a valid space or a UserError."""

from __future__ import annotations

import optuna
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autocompress.errors import UserError
from autocompress.search.space import KNOBS, SearchSpace

scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 50), st.floats(-2, 10), st.just(float("nan")),
                    st.sampled_from(["cnn", "dscnn", "int8", "qat", "channel", "2:4", "global", "conv", "x"]))
ranges = st.fixed_dictionaries({"low": st.one_of(st.integers(-3, 10), st.floats(-1, 2), st.text(max_size=2)),
                                "high": st.one_of(st.integers(-3, 10), st.floats(-1, 2))},
                               optional={"step": st.one_of(st.integers(0, 2), st.floats(0, 0.5)), "log": st.booleans(),
                                         "bogus": st.integers()})
specs = st.one_of(scalars.filter(lambda v: v is not None), st.lists(scalars.filter(lambda v: v is not None), max_size=4),
                  ranges)
names = st.one_of(st.sampled_from(sorted(KNOBS)), st.text(min_size=1, max_size=8))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(names, specs, max_size=6))
def test_any_space_table_loads_or_raises_a_user_error(table):
    try:
        space = SearchSpace.from_dict(table)
    except UserError as error:
        assert "\n" not in str(error)
        return
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(0))
    for _ in range(3):  # a space that loads suggests configurations (or a clear error), never a crash
        trial = study.ask()
        try:
            space.suggest(trial)
        except UserError:
            pass
        study.tell(trial, state=optuna.trial.TrialState.FAIL)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_any_toml_text_loads_or_raises_a_user_error(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("toml") / "space.toml"
    path.write_text(text)
    try:
        SearchSpace.load(path)
    except UserError as error:
        assert "\n" not in str(error)
