"""CSVLogger and TensorBoard: what they write equals the history, across drills, checked up front."""

import csv
import importlib.util
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from dexterity_nb.agent.callbacks import Callback, CSVLogger, TensorBoard, scalar_items, tensorboard_tag
from dexterity_nb.agent.ppo_agent import PPOAgent
from dexterity_nb.common.wrappers import make_env
from dexterity_nb.models import get_model_builder


def small_agent():
    return PPOAgent(get_model_builder("simple", "ffn"), make_env("CartPole-v1", transformers=["state"]),
                    horizon=32, workers=2, seed=0, verbose=False)


def read_csv(path):
    with open(path, newline="") as file:
        return list(csv.reader(file))


def scalar_columns(entry):
    return [key for key in entry if key not in ("episode_returns", "episode_lengths")]


# -- CSVLogger -----------------------------------------------------------------------------------
def test_csv_has_one_row_per_cycle_equal_to_the_history_across_drills(tmp_path):
    agent, logger = small_agent(), CSVLogger(tmp_path / "runs" / "history.csv")  # missing folder: made
    agent.drill(2, 1, 32, callbacks=[logger], verbose=False)
    agent.drill(1, 1, 32, callbacks=[logger], verbose=False)  # the same logger continues its file
    header, *rows = read_csv(tmp_path / "runs" / "history.csv")
    assert header == scalar_columns(agent.history[0])
    assert {"explained_variance", "gradient_norm", "mean_value", "episodes"} <= set(header)
    assert len(rows) == 3
    for row, entry in zip(rows, agent.history):
        for column, cell in zip(header, row):
            assert float(cell) == entry[column] or (math.isnan(float(cell)) and math.isnan(entry[column])), column


def test_every_row_is_on_disk_when_its_cycle_ends(tmp_path):
    path = tmp_path / "history.csv"

    class ReadsTheFile(Callback):  # runs after the logger, as a killed run's last moment would
        rows_seen = []

        def on_cycle_end(self, agent, stats):
            self.rows_seen.append(len(read_csv(path)) - 1)

    agent = small_agent()
    agent.drill(3, 1, 32, callbacks=[CSVLogger(path), ReadsTheFile()], verbose=False)
    assert ReadsTheFile.rows_seen == [1, 2, 3]


def test_append_continues_a_file_without_a_second_header_and_a_new_logger_otherwise_starts_afresh(tmp_path):
    path = tmp_path / "history.csv"
    agent = small_agent()
    agent.drill(2, 1, 32, callbacks=[CSVLogger(path)], verbose=False)
    agent.drill(1, 1, 32, callbacks=[CSVLogger(path, append=True)], verbose=False)
    header, *rows = read_csv(path)
    assert [row[header.index("cycle")] for row in rows] == ["1", "2", "3"]
    assert [row[header.index("frames")] for row in rows] == ["64", "128", "192"]

    agent.drill(1, 1, 32, callbacks=[CSVLogger(path)], verbose=False)
    header, *rows = read_csv(path)
    assert [row[header.index("cycle")] for row in rows] == ["4"]


def test_csv_keeps_the_columns_of_the_file_it_continues(tmp_path):
    path = tmp_path / "old.csv"
    path.write_text("cycle,mean_return\n1,10.0\n")  # e.g. written before the diagnostics existed
    logger = CSVLogger(path, append=True)
    logger.on_cycle_end(None, {"cycle": 2, "mean_return": 12.5, "gradient_norm": 0.3, "episode_returns": [12.5]})
    logger.on_drill_end(None, [])
    assert read_csv(path) == [["cycle", "mean_return"], ["1", "10.0"], ["2", "12.5"]]


# -- checked before any work ---------------------------------------------------------------------
def test_loggers_refuse_unwritable_paths_at_construction(tmp_path):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder")
    with pytest.raises(ValueError, match=r"`path` is the folder .*; give a file inside it"):
        CSVLogger(tmp_path)
    with pytest.raises(ValueError, match=r"`path` .*notes.txt/history.csv lies inside .*notes.txt, which is a file"):
        CSVLogger(a_file / "history.csv")
    with pytest.raises(ValueError, match=r"`log_dir` .*notes.txt is a file, not a folder"):
        TensorBoard(a_file)
    with pytest.raises(ValueError, match=r"`log_dir` .*lies inside .*notes.txt, which is a file"):
        TensorBoard(a_file / "logs")
    # /sys refuses new files even to root, where os.access would say yes
    with pytest.raises(ValueError, match=r"`path` /sys/history.csv cannot be written: .*Choose a folder you can write to"):
        CSVLogger("/sys/history.csv")
    with pytest.raises(ValueError, match=r"`log_dir` /sys/dexterity_logs cannot be written"):
        TensorBoard("/sys/dexterity_logs")
    with pytest.raises(TypeError, match="`log_dir` must be a path"):
        TensorBoard(None)
    assert not (a_file / "history.csv").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


# -- TensorBoard ---------------------------------------------------------------------------------
def read_events(log_dir):
    """{tag: {step: value}} of every scalar in the event files, and the plugins they name."""
    scalars, plugins = {}, set()
    for path in sorted(Path(log_dir).glob("events.out.tfevents.*")):
        for record in tf.data.TFRecordDataset(str(path)):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                plugins.add(value.metadata.plugin_data.plugin_name)
                scalars.setdefault(value.tag, {})[event.step] = tf.make_ndarray(value.tensor).item()
    return scalars, plugins


def test_tensorboard_writes_every_scalar_at_step_frames_and_continues_across_drills(tmp_path):
    agent, board = small_agent(), TensorBoard(tmp_path / "logs")
    agent.drill(2, 1, 32, callbacks=[board], verbose=False)
    agent.drill(1, 1, 32, callbacks=[board], verbose=False)
    scalars, plugins = read_events(tmp_path / "logs")
    assert plugins == {"scalars"}
    assert "diagnostics/explained_variance" in scalars and "losses/policy_loss" in scalars
    for entry in agent.history:
        for key, value in scalar_items(entry).items():
            if math.isfinite(value):
                assert scalars[tensorboard_tag(key)][entry["frames"]] == pytest.approx(value, rel=1e-6), key
    assert sorted(scalars["progress/cycle"].items()) == [(64, 1), (128, 2), (192, 3)]


def test_tensorboard_skips_nan_and_flushes_at_drill_end(tmp_path):
    board = TensorBoard(tmp_path / "logs")

    class StandIn:
        history = []

    board.on_drill_begin(StandIn)
    board.on_cycle_end(StandIn, {"cycle": 1, "frames": 100, "mean_return": math.nan, "gradient_norm": 2.5,
                                 "episode_returns": []})
    board.on_drill_end(StandIn, [])
    scalars, _ = read_events(tmp_path / "logs")
    assert scalars == {"progress/cycle": {100: 1}, "progress/frames": {100: 100}, "diagnostics/gradient_norm": {100: 2.5}}


# -- MPI: callbacks run on rank 0 only -----------------------------------------------------------
MPIRUN = Path(sys.executable).parent / "mpirun"

SCRIPT = """
import os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from dexterity_nb import PPOAgent, get_model_builder, make_env
from dexterity_nb.agent.callbacks import CSVLogger, TensorBoard
out = sys.argv[1]
agent = PPOAgent(get_model_builder("simple", "ffn"), make_env("CartPole-v1"), horizon=16, workers=4, seed=0, verbose=False)
loggers = [CSVLogger(os.path.join(out, "history.csv")), TensorBoard(os.path.join(out, "logs"))]
agent.drill(2, 1, 32, callbacks=loggers, verbose=False)
agent.drill(1, 1, 32, callbacks=loggers, verbose=False)
if agent.communicator.rank == 0:
    import json
    json.dump(agent.history, open(os.path.join(out, "history.json"), "w"))
"""


@pytest.mark.skipif(importlib.util.find_spec("mpi4py") is None or not MPIRUN.exists(),
                    reason="needs mpi4py and the mpirun next to this Python (pip install dexterity_nb[mpi])")
def test_loggers_under_mpirun_write_once_from_rank_0(tmp_path):
    import json

    environment = {key: value for key, value in os.environ.items() if not key.startswith(("PMI_", "OMPI_", "MV2_"))}
    completed = subprocess.run([str(MPIRUN), "-n", "2", sys.executable, "-c", SCRIPT, str(tmp_path)],
                               capture_output=True, text=True, timeout=180, env=environment)
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]
    history = json.loads((tmp_path / "history.json").read_text())
    header, *rows = read_csv(tmp_path / "history.csv")
    assert [row[header.index("frames")] for row in rows] == ["64", "128", "192"]  # both ranks' frames, one row each
    assert [float(row[header.index("gradient_norm")]) for row in rows] == [entry["gradient_norm"] for entry in history]
    assert len(list((tmp_path / "logs").glob("events.out.tfevents.*"))) == 1
    scalars, _ = read_events(tmp_path / "logs")
    assert scalars["diagnostics/explained_variance"] == {
        entry["frames"]: pytest.approx(entry["explained_variance"], rel=1e-6) for entry in history}
    assert np.isfinite([entry["gradient_norm"] for entry in history]).all()


def test_tensorboard_tags_put_curiosity_and_the_behaviour_weights_in_their_groups():
    assert tensorboard_tag("intrinsic_return") == "curiosity/intrinsic_return"
    assert tensorboard_tag("intrinsic_predictor_loss") == "curiosity/intrinsic_predictor_loss"
    assert tensorboard_tag("behaviour_weight_max") == "diagnostics/behaviour_weight_max"
    assert tensorboard_tag("something_new") == "other/something_new"
