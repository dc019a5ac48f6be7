import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture
def verdict(capsys):
    """``verdict(checker, answer)``: the checker's return value and what it printed."""

    def run(checker, answer):
        passes = checker(answer)
        return passes, capsys.readouterr().out

    return run
