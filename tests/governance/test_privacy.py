"""Personal data found in Chinese text: resident IDs (GB 11643 check digit), phones, plates, e-mail, names."""

from __future__ import annotations

import random

import pandas as pd
import pytest

from twinhub.standards.privacy import PrivacyScan, id_check_digit_ok, redact

WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]


def resident_id(region: str = "310104", birth: str = "19800101", seq: str = "123", wrong: bool = False) -> str:
    """An 18-character resident ID number with its GB 11643 check digit (or a wrong one)."""
    body = region + birth + seq
    check = "10X98765432"[sum(int(d) * w for d, w in zip(body, WEIGHTS)) % 11]
    if wrong:
        check = "10X98765432"[("10X98765432".index(check) + 1) % 11]
    return body + check


def found(texts: list[str], column: str = "note", declared: dict | None = None) -> dict:
    scan = PrivacyScan(declared)
    scan.feed(pd.DataFrame({column: texts}))
    return {k: v["values"] for k, v in scan.report()["found"].get(column, {}).items()}


VALID_ID = resident_id()
X_ID = next(resident_id(seq=f"{s:03d}") for s in range(1000) if resident_id(seq=f"{s:03d}").endswith("X"))

CASES = [  # text, detector, found?
    (f"身份证号{VALID_ID}，请核实", "resident_id", True),
    (f"身份证{X_ID}", "resident_id", True),
    (f"身份证{X_ID[:-1]}x", "resident_id", True),  # lower-case x
    (f"身份证号{resident_id(wrong=True)}，请核实", "resident_id", False),  # check digit wrong
    (f"订单号{VALID_ID}7", "resident_id", False),  # inside a longer number
    (f"ID {resident_id(birth='19801301')}", "resident_id", False),  # month 13
    ("市民来电13812345678反映路灯不亮", "mobile", True),
    ("电话：+86 138-1234-5678", "mobile", True),
    ("联系138 1234 5678", "mobile", True),
    ("电话：１３８１２３４５６７８（手机）", "mobile", True),  # full-width digits
    (f"证件号{VALID_ID.translate(str.maketrans('0123456789X', '０１２３４５６７８９Ｘ'))}", "resident_id", True),
    ("编号٣٨١٢٣٤٥٦٧٨١", "mobile", False),  # other scripts' digits are not phone numbers here
    ("工单号213812345678", "mobile", False),  # 12 digits
    ("编号12812345678", "mobile", False),  # no such prefix
    ("座机021-64871234转", "landline", True),
    ("电话(010)62751234", "landline", True),
    ("电话057188881234", "landline", True),
    ("金额0.12345678元", "landline", False),
    ("车牌沪A12345违停", "licence_plate", True),
    ("新能源车粤BD12345", "licence_plate", True),
    ("京A·F0236停在门口", "licence_plate", True),
    ("沪A1234", "licence_plate", False),  # too short
    ("邮箱li.lei@example.com.cn联系", "email", True),
    ("写信给wang_fang+city@mail.sh.gov.cn。", "email", True),
    ("不是邮箱@符号", "email", False),
]


@pytest.mark.parametrize("text, detector, expected", CASES)
def test_detectors_in_chinese_text(text: str, detector: str, expected: bool):
    assert (detector in found([text])) is expected, found([text])


def test_check_digit_on_generated_numbers():
    rng = random.Random(7)
    numbers = [resident_id(f"{rng.randint(110000, 659000)}",
                           f"{rng.randint(1940, 2010)}0{rng.randint(1, 9)}1{rng.randint(0, 9)}",
                           f"{rng.randint(0, 999):03d}") for _ in range(300)]
    wrong = [resident_id(n[:6], n[6:14], n[14:17], wrong=True) for n in numbers]
    assert id_check_digit_ok(numbers).all()
    assert not id_check_digit_ok(wrong).any()
    assert found([f"申请人{n}。" for n in numbers + wrong]) == {"resident_id": 300}


def test_counts_per_column_and_redacted_examples():
    scan = PrivacyScan()
    scan.feed(pd.DataFrame({"a": ["电话13812345678", "无", None, "13900001111或13900002222"], "n": [1, 2, 3, 4]}))
    scan.feed(pd.DataFrame({"a": [f"身份证{VALID_ID}"], "n": [5]}))
    report = scan.report()
    assert report["found"]["a"]["mobile"]["values"] == 2  # values, not matches
    assert report["found"]["a"]["resident_id"]["values"] == 1
    assert report["columns_scanned"] == ["a"] and report["values_scanned"] == 4
    examples = report["found"]["a"]["mobile"]["examples"] + report["found"]["a"]["resident_id"]["examples"]
    assert examples == ["138****5678", "139****1111", redact(VALID_ID)]
    assert not any(raw in str(report) for raw in ("13812345678", "13900001111", VALID_ID))
    assert report["undeclared"] == {"a": ["mobile", "resident_id"]}


def test_declared_personal_data_is_not_undeclared():
    scan = PrivacyScan({"phone": ("phone",), "code": ("none",), "holder": ("person_name",)})
    scan.feed(pd.DataFrame({"phone": ["13812345678", "021-64871234"], "code": ["13800000000", "x"],
                            "holder": ["张三", "欧阳娜娜"], "other": ["王五", "李四"]}))
    report = scan.report()
    assert report["found"]["phone"] == {"landline": {"values": 1, "examples": ["021-****1234"]},
                                        "mobile": {"values": 1, "examples": ["138****5678"]}}
    assert report["found"]["holder"]["person_name"]["values"] == 2
    assert "other" not in report["found"]  # names are looked for only where declared
    assert report["undeclared"] == {}


def test_redact_keeps_little():
    assert [redact(v) for v in ["13812345678", "31010519491231002X", "张三", "沪A12345", "a@b.cn"]] == [
        "138****5678", "3101**********002X", "张*", "沪A***45", "a***@b.cn"]


def test_the_byte_test_lets_every_full_width_character_through_to_the_regex():
    """No 0xEF byte means no full-width character: the scan skips its regex only then."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from twinhub.standards.privacy import _FULL_WIDTH, _may_hold_full_width

    full_width = [chr(c) for c in range(0xFF0B, 0xFF5B)]
    plain = ["北京市朝阳区", "Room 5", "，。", "138-1234", "", "ｱ"]  # U+FF71 is EF BD B1: sent on, not found
    rng = random.Random(5)
    for _ in range(300):
        values = [rng.choice(plain) + (rng.choice(full_width) if rng.random() < 0.2 else "") for _ in range(5)]
        arrow = pa.array(values)
        if pc.any(pc.match_substring_regex(arrow, _FULL_WIDTH)).as_py():
            assert _may_hold_full_width(arrow)
        if _may_hold_full_width(arrow.slice(1, 3)) is False:
            assert not pc.any(pc.match_substring_regex(arrow.slice(1, 3), _FULL_WIDTH)).as_py()
    assert not _may_hold_full_width(pa.array(["北京市朝阳区", "Room 5"]))
    assert _may_hold_full_width(pa.array(["电话１３８"]))
    assert _may_hold_full_width(pa.chunked_array([["北京"], ["电话１３８"]]))  # a column in pieces
    assert not _may_hold_full_width(pa.chunked_array([["北京"], []], pa.string()))
