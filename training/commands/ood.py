"""`verify ood fit`: fit a model's out-of-distribution gate on in-distribution data."""

from __future__ import annotations

import argparse

from verify.cli.common import add_json_flag, int_at_least, print_json, share_value
from verify.data.protocols import FOLDER_LAYOUTS


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("ood", help="fit the out-of-distribution gate of a model")
    sub = p.add_subparsers(dest="ood_command", metavar="ACTION", required=True)
    fit = sub.add_parser("fit", help="fit class-conditional Gaussians on training identities, threshold on held-out")
    fit.add_argument("--model", required=True, help="model directory (the gate is written into it)")
    fit.add_argument(
        "--data",
        required=True,
        nargs="+",
        help="in-distribution dataset folder(s); several are pooled (their writers kept apart), e.g. the training "
        "set and a set whose writers sign in other styles",
    )
    fit.add_argument(
        "--protocol",
        default="cedar",
        choices=FOLDER_LAYOUTS,
        help="dataset layout (default: cedar)",
    )
    fit.add_argument("--covariance", choices=["tied", "diag", "full"], default="tied", help="covariance model")
    fit.add_argument(
        "--features",
        choices=["backbone", "embedding"],
        default=None,
        help="what the Gaussians model (default: backbone features where the model has them)",
    )
    fit.add_argument(
        "--gate",
        choices=["exposure", "gaussian"],
        default=None,
        help="exposure: Gaussians + outlier material (printed text, tables, stamps, ...) + ink statistics, for "
        "signature models (their default); gaussian: class-conditional Gaussians only (default for faces)",
    )
    fit.add_argument(
        "--material", type=int, default=120, help="outlier images per kind for --gate exposure (default 120)"
    )
    fit.add_argument(
        "--classifier",
        choices=["mlp", "logistic"],
        default="mlp",
        help="--gate exposure: the classifier over the scores and ink statistics (default mlp; logistic is steadier "
        "on a small model's features)",
    )
    fit.add_argument(
        "--members",
        type=int,
        default=1,
        help="--gate exposure: classifiers fitted with consecutive seeds, their probabilities averaged (default 1)",
    )
    fit.add_argument(
        "--keep",
        type=share_value,
        default=None,
        help="share of held-out inputs to accept (default 0.97 for exposure, 0.95 for gaussian)",
    )
    fit.add_argument("--held-out", type=float, default=0.3, help="share of identities held out (default 0.3)")
    fit.add_argument(
        "--max-identities",
        type=int_at_least(0),
        default=0,
        help="fit on a seeded sample of this many identities (0: all); a large training set needs only a few hundred",
    )
    fit.add_argument("--seed", type=int, default=0, help="seed of the identity split")
    add_json_flag(fit)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import verify
    from training.data import data_roots, load_pooled_samples
    from training.ood_fit import fit_ood_gate, gate_split

    model = verify.load_model(args.model)
    samples = load_pooled_samples(data_roots(args.data), model.modality, args.protocol)
    parts = gate_split(samples, args.max_identities, args.held_out, args.seed)
    gate = args.gate or ("exposure" if model.modality == "signature" else "gaussian")
    section = fit_ood_gate(
        model,
        parts["train"],
        parts["held_out"],
        covariance=args.covariance,
        keep=args.keep,
        features=args.features,
        gate=gate,
        material_n=args.material,
        seed=args.seed,
        classifier=args.classifier,
        members=args.members,
    )
    if args.json:
        print_json(section)
    else:
        print(
            f"OOD gate ({gate}) written to {args.model}: threshold {section['threshold']:.4g} keeps "
            f"{section['keep']:.0%} of {section['n_held_out']} held-out inputs ({section['n_classes']} training "
            "identities)"
        )
        for kind, rate in (section.get("eval_material_rejected") or {}).items():
            print(f"  rejects {rate:.0%} of held-out {kind}")
    return 0
