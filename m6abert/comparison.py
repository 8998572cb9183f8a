"""The comparison table's numbers and files, from the per-fold records of reproduce_table.py only.

:func:`summarise` turns one protocol's records (``{model: [fold record, ...]}``, each with the
out-of-fold P(class 1) of its fold) into the content of ``table.json``: per-fold metrics, mean ±
sd, pooled AUC/AUPR, calibration (Brier, ECE) and each model's AUC difference from m6A-BERT-Deg
with two 95 % intervals (paired t over folds with Nadeau and Bengio's correction; a paired,
class-stratified **cluster** bootstrap over pooled windows that draws windows of one locus
together). :func:`leak_effect` compares protocols; :func:`table_markdown` and :func:`figure_writers`
render them.
"""

from __future__ import annotations

import numpy as np

from . import io
from .metrics import calibration, paired_cluster_bootstrap_auc, paired_t_interval, roc_band, summarise_folds
from .table_models import label
from .utils import InputError

REFERENCE = "m6a_bert_deg"
COLUMNS = (("acc", "ACC"), ("auc", "AUC"), ("mcc", "MCC"), ("f1", "F1 (macro)"), ("precision", "precision (macro)"),
           ("recall", "recall (macro)"), ("aupr", "AUPR"))
SHARED_LABEL = ""
PROTOCOLS = {"grouped": "grouped folds: windows sharing an exact {k}-nt stretch kept in one fold",
             "random": "random folds (windows of one locus may sit in different folds)"}


def pooled(records: list[dict]) -> tuple[list[str], list[int], np.ndarray, np.ndarray]:
    """(ids, folds, labels, P(class 1)) of a model's out-of-fold predictions, fold after fold."""
    ids = [i for r in records for i in r["ids"]]
    folds = [r["fold"] for r in records for _ in r["ids"]]
    labels = np.array([v for r in records for v in r["labels"]], dtype=np.int64)
    p1 = np.array([v for r in records for v in r["p1"]], dtype=np.float64)
    return ids, folds, labels, p1


def _difference(ref: list[dict], other: list[dict], groups: np.ndarray, n_boot: int, seed: int) -> dict:
    """``other - ref`` in AUC: over folds (paired t) and over pooled windows (paired cluster bootstrap)."""
    diffs = np.array([o["metrics"]["auc"] - r["metrics"]["auc"] for r, o in zip(ref, other, strict=True)])
    _, _, labels, p_ref = pooled(ref)
    p_other = pooled(other)[3]
    t = paired_t_interval(diffs, test_train_ratio=1.0 / (len(diffs) - 1))  # Nadeau-Bengio: folds share training data
    boot = paired_cluster_bootstrap_auc(labels, p_other, p_ref, groups, n_boot, seed)
    if t["contains_zero"] and boot["contains_zero"]:
        verdict = "no difference shown (both intervals contain 0)"
    elif not t["contains_zero"] and not boot["contains_zero"] and np.sign(t["mean"]) == np.sign(boot["diff"]):
        verdict = "higher AUC" if t["mean"] > 0 else "lower AUC"
    else:
        verdict = "inconclusive (one interval contains 0)"
    return {"per_fold": diffs.tolist(), "paired_t": t, "bootstrap": boot, "verdict": verdict}


def summarise(records: dict[str, list[dict]], groups: dict[str, int] | None = None, n_boot: int = 2000,
              seed: int = 52) -> dict:
    """One protocol's table from the per-fold records of every model (nothing else is read).

    ``groups`` maps each window id to its locus group (:func:`m6abert.leakage.window_groups`); the
    bootstrap draws whole groups. Without it every window is its own group.
    """
    from sklearn.metrics import average_precision_score, roc_auc_score

    first = next(iter(records.values()))
    ids, _, labels, _ = pooled(first)
    group = np.array([groups[i] for i in ids] if groups else np.arange(len(ids)))
    models = {}
    for name, recs in records.items():
        if pooled(recs)[0] != ids:
            raise InputError(f"the out-of-fold predictions of {name} are not of the same sequences as {next(iter(records))}")
        p1 = pooled(recs)[3]
        models[name] = {"label": label(name), "per_fold": [{"fold": r["fold"], "n": len(r["ids"]), **r["metrics"]}
                                                            for r in recs],
                        "mean_sd": summarise_folds([r["metrics"] for r in recs]),
                        "pooled": {"auc": float(roc_auc_score(labels, p1)), "aupr": float(average_precision_score(labels, p1))},
                        "calibration": calibration(labels, p1),
                        "extra": [r["extra"] for r in recs]}
    diffs = {name: _difference(records[REFERENCE], recs, group, n_boot, seed)
             for name, recs in records.items() if REFERENCE in records and name != REFERENCE}
    return {"n_folds": len(first), "n_sequences": len(ids), "n_positives": int(labels.sum()),
            "n_groups": len(np.unique(group)), "reference": REFERENCE if REFERENCE in records else None,
            "models": models, "differences": diffs,
            "notes": ["metrics of each fold's final model on its held-out fold (no checkpoint is chosen on it)",
                      "mean and sample standard deviation over folds; pooled = all out-of-fold predictions together",
                      "calibration of the pooled predictions: Brier score and expected calibration error (10 bins)",
                      "differences are model - m6A-BERT-Deg in AUC, with 95 % intervals: paired t over folds with "
                      "Nadeau and Bengio's corrected variance (the folds share training data) and a paired, "
                      "class-stratified cluster bootstrap over pooled windows (whole locus groups drawn)"]}


def split_loci(records: list[dict], groups: dict[str, int]) -> np.ndarray:
    """Per pooled window (:func:`pooled` order): whether its locus group has windows in other folds."""
    ids, folds, _, _ = pooled(records)
    folds_of: dict[int, set] = {}
    for i, f in zip(ids, folds, strict=True):
        folds_of.setdefault(groups[i], set()).add(f)
    return np.array([len(folds_of[groups[i]]) > 1 for i in ids])


def _split_loci_auc(records: dict[str, list[dict]], groups: dict[str, int]) -> dict:
    """Per model, the pooled AUC of windows whose locus is split across folds and of the others."""
    from sklearn.metrics import roc_auc_score

    split = split_loci(next(iter(records.values())), groups)
    out = {}
    for name, recs in records.items():
        _, _, labels, p1 = pooled(recs)
        out[name] = {}
        for key, sel in (("split", split), ("whole", ~split)):
            both = len(set(labels[sel].tolist())) == 2
            out[name][key] = {"auc": float(roc_auc_score(labels[sel], p1[sel])) if both else None,
                              "n": int(sel.sum()), "n_positive": int(labels[sel].sum())}
    return out


def leak_effect(tables: dict[str, dict], random_records: dict[str, list[dict]] | None = None,
                groups: dict[str, int] | None = None) -> dict:
    """Per model: mean AUC over folds under grouped and random folds, random - grouped, and (with the
    random protocol's records) the pooled AUC of the random folds' windows whose locus is split across
    folds against the others': a model that recognises loci scores high on the first."""
    grouped, random = tables["grouped"]["models"], tables["random"]["models"]
    by_locus = _split_loci_auc(random_records, groups) if random_records else {}
    return {name: {"auc_grouped": grouped[name]["mean_sd"]["auc"]["mean"],
                   "random_split_loci": by_locus.get(name),
                   "auc_random": random[name]["mean_sd"]["auc"]["mean"],
                   "random_minus_grouped": random[name]["mean_sd"]["auc"]["mean"] - grouped[name]["mean_sd"]["auc"]["mean"],
                   "k_chosen": {p: [e.get("k") for e in tables[p]["models"][name]["extra"]] for p in ("grouped", "random")}
                   if name == "kmer_lr" else None}
            for name in grouped if name in random}


def _bold_best(values: list[float], texts: list[str], lower: bool = False) -> list[str]:
    """``texts`` with the entries of the best value in bold (every tie; NaN never)."""
    finite = [v for v in values if np.isfinite(v)]
    best = (min(finite) if lower else max(finite)) if finite else None
    return [f"**{t}**" if best is not None and v == best else t for v, t in zip(values, texts, strict=True)]


def _interval(d: dict, key: str) -> str:
    lo, hi = d["ci"]
    return f"{d[key]:+.3f} [{lo:+.3f}, {hi:+.3f}]" + (" (contains 0)" if d["contains_zero"] else "")


def _cells(table: dict) -> dict[str, list[str]]:
    """Each column's texts, model by model, the best in bold (lowest for Brier and ECE)."""
    names, cells = list(table["models"]), {}
    for key, _ in COLUMNS:
        ms = [table["models"][n]["mean_sd"][key] for n in names]
        cells[key] = _bold_best([m["mean"] for m in ms], [f"{m['mean']:.3f} ± {m['std']:.3f}" for m in ms])
    pooled_auc = [table["models"][n]["pooled"]["auc"] for n in names]
    cells["pooled"] = _bold_best(pooled_auc, [f"{v:.3f}" for v in pooled_auc])
    for key in ("brier", "ece"):
        vals = [table["models"][n]["calibration"][key] for n in names]
        cells[key] = _bold_best(vals, [f"{v:.3f}" for v in vals], lower=True)
    return cells


def protocol_markdown(table: dict) -> str:
    """One protocol's table: a row per model (mean ± sd over folds, pooled AUC, Brier, ECE; best in
    bold), then each model's AUC difference from m6A-BERT-Deg."""
    names = list(table["models"])
    lines = ["| model | " + " | ".join(title for _, title in COLUMNS) + " | pooled AUC | Brier | ECE |",
             "|---" * (len(COLUMNS) + 4) + "|"]
    cells = _cells(table)
    for j, n in enumerate(names):
        lines.append(f"| {table['models'][n]['label']} | " + " | ".join(cells[key][j] for key in cells) + " |")
    lines += ["", f"Mean ± sample standard deviation over {table['n_folds']} folds ({table['n_sequences']} windows, "
              f"{table['n_positives']} positive, {table['n_groups']} locus groups); best per column in bold (Brier, "
              "ECE: lowest). Each fold's final model on its held-out fold; Brier and ECE of the pooled predictions."]
    if table["differences"]:
        any_d = next(iter(table["differences"].values()))
        boot = any_d["bootstrap"]
        lines += ["", f"| AUC difference from {label(REFERENCE)} | mean over folds, 95 % CI (paired t, "
                  f"{any_d['paired_t']['n']} folds, Nadeau-Bengio corrected) | pooled, 95 % CI (paired cluster bootstrap, "
                  f"{boot['n_boot']} resamples of {boot['n_groups']} groups) | verdict |", "|---|---|---|---|"]
        for n, d in table["differences"].items():
            lines.append(f"| {label(n)} | {_interval(d['paired_t'], 'mean')} | {_interval(d['bootstrap'], 'diff')} | "
                         f"{d['verdict']} |")
        lines += ["", "A difference is model − m6A-BERT-Deg; an interval that contains 0 shows no difference at 95 %."]
    return "\n".join(lines)


def _auc_n(d: dict | None) -> str:
    if not d:
        return "–"
    auc = "–" if d["auc"] is None else f"{d['auc']:.3f}"
    return f"{auc} (n {d['n']}, {d['n_positive']} pos)"


def table_markdown(result: dict) -> str:
    """``table.md``: the default protocol's table first, then the other's, then what the leak does."""
    k = result.get("group_overlap", 30)
    parts = []
    for protocol, table in result["protocols"].items():
        parts += [f"### {PROTOCOLS[protocol].format(k=k).capitalize()}", "", protocol_markdown(table), ""]
    if result.get("leak"):
        parts += ["### What the leak does", "",
                  "| model | mean AUC, grouped folds | mean AUC, random folds | random − grouped | random folds, "
                  "windows of loci split across folds | random folds, the other windows |", "|---|---|---|---|---|---|"]
        for name, d in result["leak"].items():
            by = d.get("random_split_loci") or {}
            cells = [_auc_n(by.get(key)) for key in ("split", "whole")]
            parts.append(f"| {label(name)} | {d['auc_grouped']:.3f} | {d['auc_random']:.3f} | "
                         f"{d['random_minus_grouped']:+.3f} | {cells[0]} | {cells[1]} |")
        parts += ["", "The last two columns: pooled AUC of the random folds' out-of-fold predictions on the windows "
                  "whose locus group (a shared exact stretch) has windows in another fold, and on the others (n "
                  "windows, positives)."]
        chosen = (result["leak"].get("kmer_lr") or {}).get("k_chosen")
        if chosen:
            parts += ["", f"k chosen by the k-mer LR's inner CV, fold by fold: grouped {chosen['grouped']}, "
                      f"random {chosen['random']}."]
        parts.append("")
    return "\n".join(parts + _provenance(result))


def _provenance(result: dict) -> list[str]:
    """Lines on the folds' leakage and the pretraining corpus."""
    lines = ["### Folds and pretraining corpus", ""]
    for protocol, report in result.get("leakage", {}).items():
        pairs, windows = report["cross_part_pairs"], report["windows_with_cross_part_partner"]
        lines.append(f"- {protocol} folds: {pairs['total']} pairs of windows in different folds share an exact "
                     f"{report['k']}-nt stretch ({pairs['pos-pos']} pos–pos, {pairs['neg-neg']} neg–neg, "
                     f"{pairs['pos-neg']} pos–neg; {windows['total']} of {report['n_windows']} windows).")
    corpora = result.get("pretraining") or {}
    for key, info in (corpora.get("per_fold") or {SHARED_LABEL: corpora} if corpora else {}).items():
        lines.append(f"- pretraining corpus{' of ' + key if key else ''}: {info['source']} ({info['selection']}); {info['n_read']} read, "
                     f"{info['n_dropped_sharing_a_stretch_with_folds']} dropped for sharing an exact "
                     f"{info['stretch_nt']}-nt stretch with a held-out window, {info['n_sequences']} kept "
                     f"(perplexity {info['perplexity']:.2f} after {info['steps']} steps on its held-out 10 %).")
    return [*lines, ""]


def columns(result: dict, records: dict[str, dict[str, list[dict]]], groups: dict[str, int]) -> tuple[dict, dict]:
    """The columns of ``per_fold.tsv`` (protocol, model, fold, n, metrics) and
    ``oof_predictions.tsv`` (protocol, id, locus group, fold, label, P of each model)."""
    per_fold: dict[str, list] = {"protocol": [], "model": [], "fold": [], "n": [], **{key: [] for key, _ in COLUMNS}}
    oof: dict[str, list] = {"protocol": [], "id": [], "group": [], "fold": [], "label": []}
    for protocol, table in result["protocols"].items():
        for name, m in table["models"].items():
            for f in m["per_fold"]:
                per_fold["protocol"].append(protocol)
                per_fold["model"].append(name)
                for key in list(per_fold)[2:]:
                    per_fold[key].append(f[key])
        ids, folds, labels, _ = pooled(next(iter(records[protocol].values())))
        oof["protocol"] += [protocol] * len(ids)
        oof["id"] += ids
        oof["group"] += [groups[i] for i in ids]
        oof["fold"] += folds
        oof["label"] += labels.tolist()
        for name, recs in records[protocol].items():
            oof.setdefault(f"p_{name}", []).extend(np.asarray(pooled(recs)[3], dtype=np.float32).tolist())
    return per_fold, oof


def figure_writers(result: dict, records: dict[str, dict[str, list[dict]]], groups: dict[str, int], seed: int,
                   n_boot: int = 500) -> dict[str, io.Writer]:
    """Writers of ``roc``, ``auc_per_fold`` and ``calibration`` (``.png`` and ``.pdf``): one panel per protocol."""
    from sklearn.metrics import roc_curve

    from .plots import fold_auc_figure, reliability_figure, roc_figure

    k = result.get("group_overlap", 30)
    rocs, aucs, cals = {}, {}, {}
    for protocol, table in result["protocols"].items():
        title = f"{protocol} folds ({table['n_folds']}-fold CV, {table['n_sequences']} windows)"
        rocs[title], aucs[title], cals[title] = {}, {}, {}
        for name, recs in records[protocol].items():
            ids, _, labels, p1 = pooled(recs)
            fpr, tpr, _ = roc_curve(labels, p1)
            band = roc_band(labels, p1, np.array([groups[i] for i in ids]), n_boot, seed)
            rocs[title][label(name)] = (fpr, tpr, table["models"][name]["pooled"]["auc"], band)
            aucs[title][label(name)] = [f["auc"] for f in table["models"][name]["per_fold"]]
            cals[title][label(name)] = table["models"][name]["calibration"]
    figures = {"roc": roc_figure(rocs, f"Pooled out-of-fold ROC; shaded: pointwise 95 % band, bootstrap of {k}-nt "
                                       "locus groups"),
               "auc_per_fold": fold_auc_figure(aucs, "AUC of each model on each held-out fold (a line = one fold)"),
               "calibration": reliability_figure(cals, "Calibration of the pooled out-of-fold P(degraded)")}
    return {f"{stem}.{fmt}": (lambda path, fig=fig, fmt=fmt: io.save_figure(fig, path.with_suffix(""), (fmt,), dpi=110))
            for stem, fig in figures.items() for fmt in ("png", "pdf")}
