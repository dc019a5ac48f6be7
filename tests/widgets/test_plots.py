"""plot_history must work with Agg and without ipywidgets (the CLI writes a PNG with it)."""

import subprocess
import sys


def test_plot_history_writes_a_png_without_importing_ipywidgets(tmp_path):
    script = f"""
import sys, math, matplotlib
matplotlib.use("Agg")
from dexterity_nb.widgets import plot_history
history = [dict(cycle=c, mean_return=(math.nan if c == 2 else 10.0 * c), mean_length=5.0 * c,
                episode_returns=([] if c == 2 else [5.0 * c, 15.0 * c]), policy_loss=-0.01,
                value_loss=1.0 / c, entropy=0.69, approx_kl=0.01, frames=128 * c)
           for c in range(1, 5)]
figure = plot_history(history, title="test")
figure.savefig({str(tmp_path / 'history.png')!r})
assert "ipywidgets" not in sys.modules, "plot_history imported ipywidgets"
print(len(figure.axes))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.split()[-1]) >= 4
    assert (tmp_path / "history.png").read_bytes().startswith(b"\x89PNG")


def test_plot_history_of_an_empty_history_draws_placeholders():
    from dexterity_nb.widgets.plots import plot_history

    assert len(plot_history([]).axes) == 4
