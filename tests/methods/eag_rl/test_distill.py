from methods.eag_rl.config import DistillConfig
from methods.eag_rl.distill import build_sft_records, passes_filter


def trajectory(p, attention=0.5, parsed=True, reward=0.0):
    return {"probability": p, "attention": attention, "parsed": parsed, "reward": reward, "steps": []}


def test_filter_needs_correct_confident_aligned_parsed():
    config = DistillConfig(min_confidence=0.2, min_alignment=0.3)
    assert passes_filter(trajectory(0.9), 1, config)
    assert not passes_filter(trajectory(0.9), 0, config)  # wrong side
    assert not passes_filter(trajectory(0.6), 1, config)  # not confident
    assert not passes_filter(trajectory(0.9, attention=0.1), 1, config)  # not aligned
    assert not passes_filter(trajectory(None, parsed=False), 1, config)
    assert passes_filter(trajectory(0.1), 0, config)


def test_balancing_caps_positives_and_matches_negatives():
    records = [{"id": f"p{i}", "label": int(i < 10), "trajectories": [trajectory(0.9 if i < 10 else 0.1)]}
               for i in range(100)]
    config = DistillConfig(target_positives=6, negatives_per_positive=2.0)
    rows, summary = build_sft_records(records, config)
    labels = [row["label"] for row in rows]
    assert labels.count(1) == 6 and labels.count(0) == 12
    assert summary["positives_passing"] == 10 and summary["negatives_passing"] == 90
    again, _ = build_sft_records(records, config)
    assert [r["id"] for r in again] == [r["id"] for r in rows]
