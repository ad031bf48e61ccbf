"""Fuzz: the EDID decoder. Any bytes in: an Edid or BadReply out, nothing else.

Inputs: raw bytes of every length around the 128-byte block, valid EDIDs (built from the VESA
layout by agent.sim.sysfs, not from the decoder) with byte edits, and a valid header followed
by random bytes (so the descriptor and name paths are reached, not only the header check).
"""

from __future__ import annotations

import json
from dataclasses import asdict

from hypothesis import strategies as st

from agent.checks.edid import BLOCK, HEADER, Edid, decode_edid
from agent.errors import BadReply
from agent.sim.sysfs import build_edid
from tests.faults.fuzzkit import CASES, Tally, mutated, run_fuzz

VALID = st.builds(
    build_edid,
    manufacturer=st.sampled_from(["SAM", "LGD", "DEL", "AAA", "ZZZ"]),
    product_code=st.integers(0, 0xFFFF),
    serial_number=st.integers(0, 0xFFFFFFFF),
    name=st.text(st.characters(min_codepoint=0, max_codepoint=127), max_size=16),
    serial_text=st.none() | st.text(st.characters(min_codepoint=0, max_codepoint=127), max_size=16),
    week=st.integers(0, 255),
    year=st.integers(1990, 2245),
    corrupt_checksum=st.booleans(),
)
HEADED = st.binary(min_size=0, max_size=300).map(lambda b: HEADER + b)
# Descriptor blocks tagged as name/serial text, so the text decoding sees hostile bytes.
TEXT_DESCRIPTORS = st.binary(min_size=BLOCK - 8, max_size=BLOCK - 8).map(
    lambda b: HEADER + b[:64] + b"\x00\x00\x00\xfc\x00" + b[69 - 8 + 5 :]
)
INPUTS = st.one_of(
    st.binary(max_size=400),
    st.binary(min_size=BLOCK - 1, max_size=BLOCK + 1),
    mutated(VALID),
    VALID,
    HEADED,
    TEXT_DESCRIPTORS,
)


def test_edid_decoder_never_crashes() -> None:
    tally = Tally()

    def case(data: bytes) -> None:
        try:
            edid = decode_edid(data)
        except BadReply as exc:
            assert exc.message and exc.hint, "a refusal must say why and what to do"
            tally.add("refused:" + ("short" if "bytes, expected" in exc.message else "header"))
            return
        assert isinstance(edid, Edid)
        # Decoded fields end up in check reports (JSON): they must serialise.
        json.dumps(asdict(edid))
        assert len(edid.manufacturer) == 3
        assert 1990 <= edid.year <= 1990 + 255
        tally.add("decoded:" + ("checksum_ok" if edid.checksum_valid else "checksum_bad"))

    run_fuzz(INPUTS, case)
    tally.report("edid")
    assert tally.total >= CASES
    assert tally.counts["decoded:checksum_ok"] > 0
    assert tally.counts["decoded:checksum_bad"] > 0
    assert tally.counts["refused:short"] > 0
    assert tally.counts["refused:header"] > 0
