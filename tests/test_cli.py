"""The real `mfsearch` console script, run as users run it."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest


def mfsearch(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mfsearch.cli.main", *args], capture_output=True, text=True,
                          timeout=120)


def test_models_json_lists_every_preset_with_paper_values():
    out = mfsearch("models", "--json")
    assert out.returncode == 0, out.stderr
    rows = {r["model"]: r for r in json.loads(out.stdout)}
    assert len(rows) == 23
    ca = rows["caformer_s18"]
    assert (round(ca["params_m"]), round(ca["macs_g"], 1), ca["paper_top1"]) == (26, 4.1, 83.6)
    rf = rows["randformer_s12"]
    assert (rf["paper_params_m"], rf["paper_frozen_params_m"], round(rf["frozen_params_m"], 1)) == (11.9, 0.2, 0.2)


def test_models_table():
    out = mfsearch("models")
    assert out.returncode == 0
    assert "caformer_b36" in out.stdout and "paper top-1" in out.stdout


def test_profile_table_and_json(tmp_path):
    out = mfsearch("profile", "caformer_s18")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert any(line.startswith("stage2") and "attention" in line and "14x14" in line for line in lines)
    total = next(line for line in lines if line.startswith("total")).split()
    assert total[1:] == ["26.342", "0", "4.107"]
    assert "params M" in lines[1] and "MACs G" in lines[1]
    arch = tmp_path / "a.yaml"
    arch.write_text("num_classes: 10\nimg_size: 32\ndepth: [1, 1]\ndim: [32, 64]\nmixer: [pooling, random]\n")
    out = mfsearch("profile", str(arch), "--img-size", "32", "--json")
    data = json.loads(out.stdout)
    assert data["img_size"] == 32 and [p["name"] for p in data["parts"]][-1] == "head"
    # 32 px -> stem /4 -> 8x8 -> downsample /2 -> 4x4 = 16 tokens: one 16x16 frozen random matrix.
    assert data["frozen_params"] == 16 * 16
    assert data["parts"][2]["grid"] == [4, 4]


@pytest.mark.parametrize("args, message", [
    (["profile", "caformer_s19"], "arch: 'caformer_s19' is neither a preset nor a YAML file"),
    (["profile", "missing.yaml"], "architecture file not found: missing.yaml"),
])
def test_errors_exit_2_with_one_line(args, message):
    out = mfsearch(*args)
    assert out.returncode == 2
    assert message in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


def test_bad_yaml_field_exit_2(tmp_path):
    arch = tmp_path / "bad.yaml"
    arch.write_text("depth: [1, 1]\ndim: [32, 64]\nmixer: [pooling, atention]\n")
    out = mfsearch("profile", str(arch))
    assert out.returncode == 2
    assert out.stderr.strip() == (f"mfsearch profile: error: {arch}: stages[1].mixer: 'atention' is not one of "
                                  "identity, pooling, random, sepconv, attention")


def test_help_explains():
    out = mfsearch("--help")
    assert out.returncode == 0 and "models" in out.stdout and "profile" in out.stdout


@pytest.mark.parametrize("size", ["0", "-3"])
def test_profile_refuses_a_non_positive_image_size(size, capsys):
    from mfsearch.cli.main import main
    assert main(["profile", "caformer_s18", "--img-size", size]) == 2
    err = capsys.readouterr().err
    assert f"--img-size: must be > 0, got {size}" in err and len(err.strip().splitlines()) == 1


def test_readme_interop_attribute_after_a_plain_import():
    code = "import mfsearch; print(mfsearch.interop.TIMM_IMPLEMENTATION)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "norm_eps" in out.stdout, out.stderr
