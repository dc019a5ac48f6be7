import json
import subprocess
import sys

from dexterity_nb import cli


def test_cli_drill_saves_agent_curve_and_evaluates(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["drill", "CartPole-v1", "--cycles", "3", "--horizon", "16", "--workers", "2",
                     "--epochs", "1", "--batch-size", "16", "--seed", "0", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Cycle     3/3:" in printed
    assert (out / "agent.npz").exists() and (out / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert len(json.loads((out / "evaluation.json").read_text())["returns"]) == 10
    assert cli.main(["evaluate", str(out), "--episodes", "2"]) == 0
    assert "2 deterministic episodes" in capsys.readouterr().out


def test_cli_reports_bad_input_without_a_traceback(capsys):
    assert cli.main(["drill", "CartPole-v0x"]) == 2
    assert "Unknown environment id 'CartPole-v0x'. Did you mean 'CartPole-v0'" in capsys.readouterr().err
    assert cli.main(["drill", "CartPole-v1", "--transformers", "state,rewards", "--cycles", "1"]) == 2
    assert "Unknown transformer 'rewards'" in capsys.readouterr().err


def test_python_dash_m_entry_point_shows_help():
    result = subprocess.run([sys.executable, "-m", "dexterity_nb", "drill", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "--batch-size" in result.stdout


def test_importing_the_package_does_not_load_tensorflow():
    code = "import sys, dexterity_nb, dexterity_nb.common.transformers; print('tensorflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False"
