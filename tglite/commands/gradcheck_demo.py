"""`tglite gradcheck-demo`: gradient-check a small MLP, then catch a planted wrong backward rule."""
from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "gradcheck-demo",
        help="gradient-check a small MLP and show what a failed check looks like",
        description="Build a 3-5-2 tanh MLP in float64 from engine ops and check the gradient of "
        "its loss with respect to every parameter against central finite differences "
        "(tinygrad_lite.gradcheck). Then plant a mistake (a Square op whose backward forgets the "
        "factor 2) and print gradcheck's report and diagnosis. Exit code 0 when the correct MLP "
        "passes and the planted mistake is caught, 1 otherwise.",
    )
    parser.add_argument("--seed", type=_non_negative_int, default=0,
                        help="seed for the parameters and the data (default: %(default)s)")
    parser.set_defaults(handler=run)
    return parser


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {value}")
    return value


def run(args: argparse.Namespace) -> int:
    from ..demos.engine import gradcheck_demo

    result = gradcheck_demo(seed=args.seed)
    if result.correct_passed and result.mistake_caught:
        print("\nOK: the correct gradients pass and the wrong one is caught.")
        return 0
    print("\nUNEXPECTED: " + ("the correct MLP failed its gradient check. " if not result.correct_passed else "")
          + ("the planted mistake was not caught." if not result.mistake_caught else ""))
    return 1
