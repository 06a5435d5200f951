"""Stage outputs/<run>/release/ and push it to the Hugging Face Hub (stage only without a token).

    python scripts/release.py --run cpu --repo-id org/mpnet-medical [--tag v0.1.0] [--private] [--dry-run]

Verifies outputs/<run>/exports/, the ONNX and OpenVINO exports of final/ that `make exports` (or
`python scripts/export.py --run <run>`) built, and ships them; it never builds them (--no-exports: release
without them). `make release` builds them first where they are missing.

Honours HF_ENDPOINT, HF_TOKEN (or `hf auth login`), OUTPUTS_DIR and PREPARED_DIR. Thin: the work is in
medenc.release.
"""

from __future__ import annotations

import argparse
import shlex
import sys

from _cli import with_env_args

from medenc.core.errors import MedencError, fail
from medenc.core.paths import run_folder
from medenc.release import release


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run", required=True, help="run name: the folder outputs/<run>/ ($OUTPUTS_DIR)")
    parser.add_argument("--repo-id", required=True, help="Hub repo id, namespace/name")
    parser.add_argument("--tag", help="tag the release commit, e.g. v0.1.0")
    parser.add_argument("--private", action="store_true", help="create the repo as private")
    parser.add_argument("--dry-run", action="store_true", help="stage only, never contact the Hub")
    parser.add_argument(
        "--test-release",
        action="store_true",
        help="tests only: let a random-weight model through; its card's first line says so",
    )
    parser.add_argument(
        "--no-exports", action="store_true", help="ship no ONNX / OpenVINO exports (shipped by default)"
    )
    argv = with_env_args(argv, "MEDENC_RELEASE_ARGS")  # make's RELEASE_ARGS
    args = parser.parse_args(argv)
    # The exact command to repeat, for the "no token" and "push failed" hints.
    command = shlex.join([sys.executable, "scripts/release.py", *argv])
    try:
        release(
            run_folder(args.run),
            args.repo_id,
            tag=args.tag,
            private=args.private,
            dry_run=args.dry_run,
            test_release=args.test_release,
            exports=not args.no_exports,
            command=command,
        )
    except MedencError as exc:
        return fail(exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
