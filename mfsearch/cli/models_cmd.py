"""`mfsearch models` and `mfsearch profile`: presets and their computed cost."""
from __future__ import annotations

import argparse
import json

from ..api import count_cost, list_presets, resolve_arch
from ..errors import ConfigError
from ..published import published
from ..presets import preset_family
from .table import format_table


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "models", help="list the paper's models with computed and published params/MACs",
        description="List every preset (the paper's IdentityFormer, RandFormer, PoolFormerV2, ConvFormer "
                    "and CAFormer models) with params and MACs computed at 224 px beside the paper's "
                    "published params, MACs and ImageNet-1K top-1.")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run_models)

    p = sub.add_parser(
        "profile", help="per-stage params, frozen params and MACs of an architecture",
        description="Per-stage and total trainable params, frozen params and MACs (paper convention: "
                    "conv/linear/matmul multiply-accumulates) of a preset or an arch YAML file.",
        epilog="examples:\n  mfsearch profile caformer_s18\n  mfsearch profile arch.yaml --img-size 32 --json",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("arch", help="preset name (see `mfsearch models`) or path to an arch YAML file")
    p.add_argument("--img-size", type=int, default=None,
                   help="input size in pixels (default: the architecture's img_size, 224 for presets)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run_profile)


def models_rows() -> list[dict]:
    rows = []
    for name in list_presets():
        cost = count_cost(name, img_size=224)
        paper = published(name, 224)
        rows.append({
            "model": name, "family": preset_family(name).title,
            "params_m": round(cost.params / 1e6, 3), "frozen_params_m": round(cost.frozen_params / 1e6, 3),
            "macs_g": round(cost.macs / 1e9, 3),
            "paper_params_m": paper.params_m if paper else None,
            "paper_frozen_params_m": paper.frozen_m if paper else None,
            "paper_macs_g": paper.macs_g if paper else None,
            "paper_top1": paper.top1 if paper else None,
        })
    return rows


def run_models(args: argparse.Namespace) -> int:
    rows = models_rows()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    table = [[r["model"], r["family"], f"{r['params_m']:.2f}", f"{r['frozen_params_m']:.2f}" if r["frozen_params_m"] else "-",
              f"{r['macs_g']:.2f}", _paper_params(r), f"{r['paper_macs_g']}", f"{r['paper_top1']}"] for r in rows]
    print(format_table(["model", "family", "params M", "frozen M", "MACs G", "paper params M", "paper MACs G",
                        "paper top-1"], table, align="llrrrrrr"))
    print("\nComputed at 224 px, 1000 classes. Paper: MetaFormer Baselines for Vision, ImageNet-1K at 224 px.")
    return 0


def _paper_params(row: dict) -> str:
    text = f"{row['paper_params_m']}"
    return text + (f" + {row['paper_frozen_params_m']}" if row["paper_frozen_params_m"] else "")


def run_profile(args: argparse.Namespace) -> int:
    cfg = resolve_arch(args.arch)
    try:
        cost = count_cost(cfg, img_size=args.img_size)
    except ConfigError as err:
        raise (ConfigError("--img-size", err.message) if err.path == "img_size" else err) from None
    if args.json:
        print(json.dumps({"arch": args.arch, **cost.to_dict()}, indent=2))
        return 0
    stage_of = {f"stage{i}": s for i, s in enumerate(cfg.stages)}
    # One unit per column, picked from the total, so small search candidates stay readable.
    p_unit, f_unit, m_unit = _unit(cost.params), _unit(cost.frozen_params), _unit(cost.macs)
    rows = []
    for part in cost.parts:
        stage = stage_of.get(part.name)
        mixers = ", ".join(sorted({str(m) for m in stage.block_mixers()})) if stage else ""
        rows.append([part.name, f"{stage.depth}" if stage else "", f"{stage.dim}" if stage else "",
                     mixers, f"{part.grid[0]}x{part.grid[1]}" if part.grid else "",
                     _fmt(part.params, p_unit), _fmt(part.frozen_params, f_unit), _fmt(part.macs, m_unit)])
    rows.append(["total", "", "", "", "", _fmt(cost.params, p_unit), _fmt(cost.frozen_params, f_unit),
                 _fmt(cost.macs, m_unit)])
    print(f"{args.arch} at {cost.img_size} px, {cfg.num_classes} classes")
    print(format_table(["part", "depth", "dim", "mixer", "tokens", f"params {p_unit[0]}",
                        f"frozen {f_unit[0]}", f"MACs {m_unit[0]}"], rows, align="lrrlrrrr"))
    return 0


def _unit(total: int) -> tuple[str, float]:
    for name, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if total >= scale:
            return name, scale
    return "", 1.0


def _fmt(value: int, unit: tuple[str, float]) -> str:
    return f"{value / unit[1]:.3f}" if unit[1] > 1 else str(value)
