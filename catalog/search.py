"""Finding datasets: ranked text search over titles, descriptions, columns and labels.

Chinese is written without spaces, so text is cut into tokens the same way
for queries and datasets: runs of CJK characters become overlapping
character bigrams (a single character stays a unigram), other text becomes
lower-case words (``pumping_station`` -> ``pumping``, ``station``). No word
list or dictionary is needed, which suits a city's own vocabulary.

A dataset's text is its title, description, id, column names and its label
values -- the vocabulary codes in its label columns plus, when the caller
passes them, those codes' human labels in every language (so ``泵站`` finds
the dataset whose rows carry ``pumping_station``). Fields are weighted
(title highest) and each query token counts by its rarity (IDF).

    >>> tokens("Elderly care 养老院 day_care")
    ['elderly', 'care', '养老', '老院', 'day', 'care']
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field

from twinhub.catalog.lake import META_SCHEMA, Lake
from twinhub.catalog.notes import column_facts, q

WEIGHTS = {"title": 3.0, "id": 2.0, "labels": 2.0, "columns": 1.5, "description": 1.0}
MAX_LABEL_VALUES = 200
_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_RUNS = re.compile(rf"[{_CJK}]+|[^\W_{_CJK}]+", re.UNICODE)


@dataclass
class Hit:
    dataset: str
    title: str
    department: str
    standard: str
    classification: str
    score: float
    matched: list[str] = field(default_factory=list)  # field:token pairs that matched
    extent: list[float] | None = None


def tokens(text: str | None) -> list[str]:
    """Search tokens of ``text``: lower-case words, and bigrams of CJK runs."""
    out: list[str] = []
    for run in _RUNS.findall(unicodedata.normalize("NFKC", text or "").lower()):
        if re.match(rf"[{_CJK}]", run):
            out.extend([run] if len(run) == 1 else [run[i:i + 2] for i in range(len(run) - 1)])
        else:
            out.append(run)
    return out


def _documents(lake: Lake, synonyms: dict[str, list[str]]) -> list[dict]:
    con = lake.connect(read_only=True)
    try:
        names = ("dataset", "title", "description", "department", "standard", "classification")
        entries = [dict(zip(names, r)) for r in con.execute(
            f"SELECT {', '.join(names)} FROM {META_SCHEMA}.datasets ORDER BY dataset").fetchall()]
        extents = dict(con.execute(f"SELECT dataset, r.extent FROM {META_SCHEMA}.quality JOIN {META_SCHEMA}.runs r "
                                   "USING (run_id, dataset)").fetchall())
        for doc in entries:
            own = [(c["name"], c["is_label"]) for c in column_facts(con, doc["dataset"])]
            doc["columns"] = " ".join(n for n, _ in own)
            values = []
            for name, is_label in own:
                if is_label:
                    values += [r[0] for r in con.execute(
                        f"SELECT DISTINCT {q(name)} FROM {doc['dataset']} WHERE {q(name)} IS NOT NULL "
                        f"LIMIT {MAX_LABEL_VALUES}").fetchall()]
            doc["labels"] = " ".join(str(v) + " " + " ".join(synonyms.get(str(v), [])) for v in values)
            doc["id"] = doc["dataset"].replace(".", " ")
            doc["extent"] = json.loads(extents[doc["dataset"]]) if extents.get(doc["dataset"]) else None
    finally:
        con.close()
    return entries


def _intersects(extent: list[float] | None, bbox: tuple[float, float, float, float]) -> bool:
    return bool(extent) and not (extent[2] < bbox[0] or extent[0] > bbox[2] or extent[3] < bbox[1] or extent[1] > bbox[3])


def search(
    lake: Lake,
    text: str | None = None,
    department: str | None = None,
    standard: str | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    synonyms: dict[str, list[str]] | None = None,
) -> list[Hit]:
    """Datasets matching the filters, best first; all of them (by name) when ``text`` is empty."""
    docs = [
        d for d in _documents(lake, synonyms or {})
        if (not department or d["department"] == department)
        and (not standard or d["standard"] == standard)
        and (bbox is None or _intersects(d["extent"], bbox))
    ]
    wanted = list(dict.fromkeys(tokens(text)))
    bags = [{f: Counter(tokens(d[f])) for f in WEIGHTS} for d in docs]
    hits = []
    for doc, bag in zip(docs, bags):
        score, matched = 0.0, []
        for token in wanted:
            df = sum(1 for b in bags if any(token in b[f] for f in WEIGHTS))
            idf = math.log(1 + (len(docs) + 1) / (df + 0.5))
            for name, weight in WEIGHTS.items():
                tf = bag[name][token]
                if tf:
                    score += weight * idf * (1 + math.log(tf))
                    matched.append(f"{name}:{token}")
        if wanted and not score:
            continue
        hits.append(Hit(doc["dataset"], doc["title"], doc["department"], doc["standard"], doc["classification"],
                        round(score, 3), matched, doc["extent"]))
    return sorted(hits, key=lambda h: (-h.score, h.dataset))
