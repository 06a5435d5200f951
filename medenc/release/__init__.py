"""``make release``: the model card, the push to the Hub, and publishing a run's records into results/.

card (the card rendered from the run's own records), hub (stage the release folder with the exports
``make exports`` built, verified and copied, and push it as one commit), publish (``make results``: a run's
records and its quality targets). The entry point is :func:`release`.
"""

from medenc.release.hub import release

__all__ = ["release"]
