"""User-facing errors: one line that names the problem and the fix, raised before any training starts."""


class SMCError(Exception):
    """A problem the user can fix (bad config, missing data, unknown name). The CLI prints it as one line."""


def unknown(kind: str, name: str, known: list[str]) -> SMCError:
    """The error for a name that is not registered, listing what is."""
    return SMCError(f"unknown {kind} {name!r}; choose one of: {', '.join(sorted(known))}")


def check_sparsity(sparsity: float) -> float:
    """Sparsity is the fraction of in-scope weights set to zero, in [0, 1)."""
    try:
        s = float(sparsity)
    except (TypeError, ValueError):
        raise SMCError(f"sparsity must be a number in [0, 1), got {sparsity!r}") from None
    if not 0.0 <= s < 1.0:
        raise SMCError(f"sparsity must be in [0, 1), got {s}; e.g. 0.2, 0.36, 0.488 (1 - 0.8^k)")
    return s


def run_main(main) -> None:
    """`python -m smc_lib.<module>` entry: an SMCError becomes one line on stderr and exit status 1."""
    try:
        main()
    except SMCError as e:
        raise SystemExit(f"error: {e}") from None
