"""Feature perturbations of a test cohort at set intensities (the robustness analysis, issue 8).

A :class:`Perturbation` is a kind and a level, written as a condition string ``"<kind>:<level>"``:

==============  ==================================================================================
``shuffle:f``   The paper's perturbation: the *order* of a fraction ``f`` of the dynamic features is
                shuffled. For LLMs the feature lines of the prompt move (the serializer's
                ``shuffle_fraction``; each line keeps its name, unit and values). For DL models the
                columns of the input move: patient ``i``'s column ``j`` receives the values of feature
                ``order[j]`` (raw, normalised and mask together), so a model that reads columns by position
                sees another feature's values in that slot. The permutation is the very one the
                serializer uses for the same patient (:func:`benchmark.serialize.shuffled_order`, seeded by
                (seed, patient id)): the same features move for the LLM and for the DL models.
``noise:s``     Beyond the paper: multiplicative value noise. Every observed raw value ``x`` becomes
                ``x * (1 + s * z)`` with ``z ~ N(0, 1)`` clipped to [-3, 3], and the factor also clipped
                at 0, so a value moves by at most ``3 s`` of itself and never changes sign.
``mask:p``      Beyond the paper: random masking. In each patient, ``round(p * observed)`` of the observed
                raw values (chosen uniformly) become missing.
==============  ==================================================================================

Level 0 of every kind is the identity, written ``none`` (the unperturbed reference of the degradation
curves; a different name from ``standard``, the main evaluation, because the robustness stages may score
another patient subset). Noise and masking change ``raw``; the DL view is then rebuilt from it with the
cohort's stored *train* normalisation (z-score, last observation carried forward, train median; no refit),
exactly as :mod:`benchmark.data.preprocess` built it, and ``mask`` follows ``raw``. LLMs read the perturbed
``raw`` as text. Static features (age, sex), times, labels and ids are never perturbed.

Every random draw is seeded by (seed, kind, patient id), so a patient is perturbed the same way whatever
subset or order it is in: the LLM subset and the DL test split share their perturbed values.
"""

from __future__ import annotations

import dataclasses
import zlib
from dataclasses import dataclass
from typing import Literal

import numpy as np

from benchmark.config import ConfigError
from benchmark.data.cohort import Cohort
from benchmark.data.preprocess import normalise_and_impute
from benchmark.serialize import patient_seed, shuffled_order

Kind = Literal["none", "shuffle", "noise", "mask"]
KINDS: tuple[str, ...] = ("none", "shuffle", "noise", "mask")
NONE = "none"
NOISE_CLIP = 3.0  # z of the multiplicative noise is clipped to [-NOISE_CLIP, NOISE_CLIP]


@dataclass(frozen=True)
class Perturbation:
    """One perturbation: ``kind`` at ``level`` (a fraction for shuffle/mask, a relative std for noise)."""

    kind: Kind = "none"
    level: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"perturbation kind '{self.kind}' is unknown; use one of {KINDS}")
        if not np.isfinite(self.level) or self.level < 0:
            raise ConfigError(f"perturbation level must be a finite number >= 0, got {self.level!r}")
        if self.kind in ("shuffle", "mask") and self.level > 1:
            raise ConfigError(f"'{self.kind}' level is a fraction of the features/values, got {self.level} > 1")
        if self.kind == "none" and self.level != 0:
            raise ConfigError(f"'none' takes no level, got {self.level}")
        if self.level == 0 and self.kind != "none":  # every kind at level 0 is the identity
            object.__setattr__(self, "kind", "none")

    @classmethod
    def parse(cls, text: str | Perturbation) -> Perturbation:
        """``"shuffle:0.4"``, ``"noise:0.1"``, ``"mask:0.5"`` or ``"none"`` (any kind at level 0 is ``none``)."""
        if isinstance(text, Perturbation):
            return text
        value = str(text).strip()
        if value == NONE:
            return cls()
        kind, sep, level = value.partition(":")
        if not sep or kind not in KINDS:
            raise ConfigError(f"perturbation '{text}': write '<kind>:<level>' with kind in {KINDS[1:]} "
                              f"(e.g. 'shuffle:0.4'), or 'none'")
        try:
            number = float(level)
        except ValueError:
            raise ConfigError(f"perturbation '{text}': level '{level}' is not a number") from None
        return cls(kind, number)  # type: ignore[arg-type]

    @property
    def condition(self) -> str:
        """The condition string of descriptors and tables: ``none`` or ``<kind>:<level>`` (``%g``)."""
        return NONE if self.kind == "none" else f"{self.kind}:{self.level:g}"

    @property
    def slug(self) -> str:
        """A folder name for the condition (no ``:``): ``none``, ``shuffle_0.4``."""
        return self.condition.replace(":", "_")

    @property
    def is_identity(self) -> bool:
        return self.kind == "none"


def parse_levels(values: list[str], where: str = "levels") -> list[Perturbation]:
    """Parse a list of condition strings; duplicates (``shuffle:0`` and ``none`` alike) are dropped in order."""
    out: list[Perturbation] = []
    for i, value in enumerate(values):
        try:
            perturbation = Perturbation.parse(value)
        except ConfigError as error:
            raise ConfigError(f"{where}[{i}]: {error}") from None
        if perturbation not in out:
            out.append(perturbation)
    return out


def _rng(seed: int, kind: str, patient_id: str) -> np.random.Generator:
    """A generator for one patient and one perturbation kind (see the module docstring)."""
    return np.random.default_rng([seed, zlib.crc32(kind.encode()), zlib.crc32(str(patient_id).encode("utf-8"))])


def column_orders(cohort: Cohort, fraction: float, seed: int) -> np.ndarray:
    """(n, d) per-patient column orders: ``order[i, j]`` = the feature whose values land in column ``j``.

    The permutation of patient ``i`` is the serializer's line order for that patient (same seed), so the
    DL shuffle and the LLM shuffle move the same features.
    """
    d = len(cohort.features)
    return np.array([shuffled_order(d, fraction, patient_seed(seed, str(pid))) for pid in cohort.ids],
                    dtype=np.int64).reshape(len(cohort), d)


def shuffle_columns(cohort: Cohort, fraction: float, seed: int) -> Cohort:
    """The DL form of ``shuffle:fraction``: per patient, a ``fraction`` of the feature columns change place.

    ``raw``, ``values`` and ``mask`` are permuted together (the normalised values move as they are: the
    model reads feature A's z-scores in feature B's slot). ``salient`` (synthetic ground truth) is left on
    the feature names, which do not move.
    """
    if fraction == 0:
        return cohort
    orders = column_orders(cohort, fraction, seed)  # (n, d)
    take = np.broadcast_to(orders[:, None, :], cohort.raw.shape)
    return dataclasses.replace(
        cohort, raw=np.take_along_axis(cohort.raw, take, axis=2),
        values=np.take_along_axis(cohort.values, take, axis=2),
        mask=np.take_along_axis(cohort.mask, take, axis=2),
        provenance={**cohort.provenance, "perturbation": {"kind": "shuffle", "level": fraction, "seed": seed,
                                                          "view": "dl columns"}},
    )


def noise_factors(cohort: Cohort, sigma: float, seed: int) -> np.ndarray:
    """(n, T, d) multiplicative factors ``clip(1 + sigma * clip(z, -3, 3), 0, None)``, seeded per patient."""
    n, T, d = cohort.raw.shape
    z = np.stack([_rng(seed, "noise", str(pid)).standard_normal((T, d)) for pid in cohort.ids]) if n else \
        np.zeros((0, T, d))
    return np.clip(1.0 + sigma * np.clip(z, -NOISE_CLIP, NOISE_CLIP), 0.0, None)


def add_noise(cohort: Cohort, sigma: float, seed: int) -> Cohort:
    """Multiplicative noise of relative std ``sigma`` on every observed raw value, DL view rebuilt."""
    if sigma == 0:
        return cohort
    raw = cohort.raw * noise_factors(cohort, sigma, seed)  # NaN stays NaN
    return _with_raw(cohort, raw, {"kind": "noise", "level": sigma, "seed": seed})


def mask_values(cohort: Cohort, fraction: float, seed: int) -> Cohort:
    """Make ``round(fraction * observed)`` observed raw values of each patient missing, DL view rebuilt."""
    if fraction == 0:
        return cohort
    raw = cohort.raw.copy()
    for i, pid in enumerate(cohort.ids):
        observed = np.flatnonzero(~np.isnan(raw[i]).ravel())
        k = int(round(fraction * observed.size))
        if k:
            chosen = _rng(seed, "mask", str(pid)).choice(observed, size=k, replace=False)
            raw[i].reshape(-1)[chosen] = np.nan
    return _with_raw(cohort, raw, {"kind": "mask", "level": fraction, "seed": seed})


def _with_raw(cohort: Cohort, raw: np.ndarray, record: dict) -> Cohort:
    """``cohort`` with new raw values: mask from raw, values re-derived with the stored train statistics."""
    return dataclasses.replace(
        cohort, raw=raw, mask=~np.isnan(raw), values=normalise_and_impute(raw, cohort.n_visits, cohort.normalisation),
        provenance={**cohort.provenance, "perturbation": record},
    )


def perturb_values(cohort: Cohort, perturbation: Perturbation | str, seed: int) -> Cohort:
    """The cohort with ``noise`` / ``mask`` applied to its values; ``none`` and ``shuffle`` return it as is.

    What an LLM reads: the shuffle of an LLM is an order of prompt lines, applied by the serializer
    (:func:`serializer_kwargs`), not a change of values.
    """
    perturbation = Perturbation.parse(perturbation)
    if perturbation.kind == "noise":
        return add_noise(cohort, perturbation.level, seed)
    if perturbation.kind == "mask":
        return mask_values(cohort, perturbation.level, seed)
    return cohort


def perturb_for_dl(cohort: Cohort, perturbation: Perturbation | str, seed: int) -> Cohort:
    """What a DL model reads under ``perturbation``: values perturbed, or columns shuffled."""
    perturbation = Perturbation.parse(perturbation)
    if perturbation.kind == "shuffle":
        return shuffle_columns(cohort, perturbation.level, seed)
    return perturb_values(cohort, perturbation, seed)


def serializer_kwargs(perturbation: Perturbation | str, seed: int) -> dict[str, float | int]:
    """Keyword arguments of :func:`benchmark.serialize.serialize_patient` for ``perturbation`` (LLMs)."""
    perturbation = Perturbation.parse(perturbation)
    if perturbation.kind == "shuffle":
        return {"shuffle_fraction": perturbation.level, "seed": seed}
    return {}
