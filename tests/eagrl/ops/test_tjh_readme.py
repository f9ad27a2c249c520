"""README.md of the TJH tables: provenance, counts, key numbers and why LLM rows are absent."""

from __future__ import annotations

import json
import re
from pathlib import Path

from eagrl.ops.tjh_config import TITLE
from eagrl.ops.tjh_readme import readme_text


def _json(path: Path):
    return json.loads(path.read_text())


def test_readme_states_provenance_counts_and_why_no_llm_rows(tables, tmp_path):
    folder = tmp_path / "tables"
    for path in tables.rglob("*"):
        if path.is_file():
            (folder / path.relative_to(tables)).parent.mkdir(parents=True, exist_ok=True)
            (folder / path.relative_to(tables)).write_bytes(path.read_bytes())
    lengths = [{"dataset": "tjh", "style": "qd", "split": "test", "patients": 60, "features": 4, "tokens_median": 3000.0,
                "tokens_min": 2000, "tokens_max": 5000, "tokenizer": "tok.gguf"},
               {"dataset": "src", "style": "qd", "split": "test", "patients": 50, "features": 4, "tokens_median": 500.0,
                "tokens_min": 400, "tokens_max": 600, "tokenizer": "tok.gguf"}]
    (folder / "prompt_lengths.json").write_text(json.dumps(lengths))
    info = {"command": "eagrl tjh-tables --tjh w.xlsx", "commit": "abc123", "workbook_name": "w.xlsx",
            "workbook_sha256": "f" * 64, "date": "2026-01-01 00:00:00 UTC", "models": ["logistic"], "source": "src",
            "repro_seconds": 90.0, "cpus": 2, "load": 1.0, "targets": ["prepare@tjh"], "ran": ["prepare@tjh"],
            "stage_times": [{"stage (log name)": "prepare@tjh", "started": "x", "wall s": 1.0, "peak MB": 400.0}]}
    text = readme_text(info, folder)
    assert text.startswith(f"# {TITLE}\n")
    cohort_rows = _json(folder / "counts.json")
    assert f"**{cohort_rows[0]['patients']} patients: {cohort_rows[0]['deaths']} deaths" in text
    assert f"**{cohort_rows[-1]['patients']} of them into test**" in text
    assert "abc123" in text and "f" * 64 in text and "make tjh-tables TJH=" in text
    assert "**3000 tokens**" in text and "6.0 times the src median of 500" in text
    assert "no faithfulness table" in text and "[experts.md](experts.md)" in text and "logistic" in text
    assert "## Beside ClinicRealm" in text
    assert re.search(r"\| ConCare +\| AUROC +\| — +\| 0\.910 ± 0\.021 +\| — +\| not reproduced", text)
