"""Settings of ``eagrl tjh-tables`` and their checks: the workbook, the output folder, the experts, the backbone.

Nothing of it lives in params.yaml: the options come from the command line (:class:`TJHTablesConfig`), and
``--models`` restricts ``experts.models`` of the scratch copy's params.yaml (:func:`restrict_models`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from benchmark.config import ConfigError, option
from benchmark.paths import BACKBONE, RESULTS

DATASET = "tjh"         # the data set `eagrl configure --tjh` adds
TASK = "mortality"      # TJH's only task
TITLE = "TJH (real data): deep-learning tables"  # first line of README.md: marks a folder this command may replace
BACKBONE_MANIFEST = "backbone.json"


@dataclass
class TJHTablesConfig:
    """Settings of ``eagrl tjh-tables`` (command-line options; nothing of it lives in params.yaml)."""

    tjh: str = option(help="Path of time_series_375_prerpocess_en.xlsx (read where it is, never copied).")
    out: str = option((RESULTS / "tjh").as_posix(), help="Folder that receives the tables (replaced as a whole).")
    source: str = option("synthetic_icu", help="Source data set of the cross-domain pair source -> tjh that "
                                               "`eagrl configure --tjh` adds.")
    models: list[str] = option([], help="Experts trained and reported ([] = experts.models of params.yaml); a "
                                        "subset makes a quick run (the end-to-end test uses logistic).")
    backbone: str = option("", help="Folder with the backbone's tokenizer for the prompt lengths ('' = "
                                    "<repository>/models/backbone when built, else build_backbone in the scratch copy).")
    style: str = option("qd", help="Prompt style measured (qd = Question Decomposition, EAG-RL's format).")
    workdir: str = option("", help="Scratch folder ('' = a new temporary folder); must be absent or empty.")
    keep_workdir: bool = option(False, help="Keep the scratch copy after a successful run (it is always kept "
                                            "after a failure).")


def check_workbook(path: str | Path) -> Path:
    """The workbook's absolute path; a clear error when it is missing or not an .xlsx file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"--tjh {path}: TJH workbook not found; download time_series_375_prerpocess_en.xlsx "
                          f"(HAIRLAB/Pre_Surv_COVID_19 or yhzhu99/ehr-llm-benchmark) and pass its path "
                          f"(`make tjh-tables TJH=/path/to/time_series_375_prerpocess_en.xlsx`)")
    if path.suffix.lower() != ".xlsx":
        raise ConfigError(f"--tjh {path}: expected the Excel workbook time_series_375_prerpocess_en.xlsx")
    return path.resolve()


def check_out(out: Path) -> None:
    """Refuse to replace a folder that holds something else than an earlier output of this command."""
    if not out.exists():
        return
    if not out.is_dir():
        raise ConfigError(f"--out {out}: exists and is not a folder; pass another --out")
    readme = out / "README.md"
    ours = readme.is_file() and readme.read_text(encoding="utf-8", errors="replace").startswith(f"# {TITLE}")
    if any(out.iterdir()) and not ours:
        raise ConfigError(f"--out {out}: folder is not empty and was not written by `eagrl tjh-tables` (its "
                          f"README.md does not start with '# {TITLE}'); it would be replaced as a whole: pass "
                          f"another --out, e.g. results/tjh")


def restrict_models(params_path: Path, models: list[str]) -> None:
    """Set ``experts.models`` to ``models`` (a subset of the configured list), keeping comments."""
    from ruamel.yaml import YAML

    yaml_rt = YAML()
    yaml_rt.preserve_quotes = True
    yaml_rt.indent(mapping=2, sequence=4, offset=2)
    yaml_rt.width = 4096
    data = yaml_rt.load(params_path.read_text())
    configured = list(data["experts"]["models"])
    unknown = [m for m in models if m not in configured]
    if unknown:
        raise ConfigError(f"--models {unknown}: not in experts.models of params.yaml ({configured}); choose among those")
    data["experts"]["models"] = [m for m in configured if m in models]
    with params_path.open("w") as handle:
        yaml_rt.dump(data, handle)


def find_backbone(root: Path, given: str) -> Path | None:
    """The tokenizer folder to use: ``given``, else a built ``<root>/models/backbone``, else None (build it)."""
    if given:
        path = Path(given).expanduser().resolve()
        if not path.is_dir():
            raise ConfigError(f"--backbone {given}: folder not found; pass a folder built by `eagrl build-backbone` "
                              f"or a Hugging Face model folder, or leave it out to build the backbone in the scratch copy")
        return path
    built = root / BACKBONE
    return built.resolve() if (built / BACKBONE_MANIFEST).is_file() else None
