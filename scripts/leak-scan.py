#!/usr/bin/env python3
"""Scans logs for personal data in clear; exits 1 on any hit.

What counts as a hit:
- an 18-character ID number whose GB 11643 check character is right (a
  masked one such as 370302********1234 is not one);
- an 11-digit mainland mobile number (1[3-9] and 9 digits), not inside a
  longer run of letters and digits (a hash);
- a name the synthetic city generator makes: a run of Chinese characters,
  alone between non-Chinese ones, that is one of its surnames followed by
  one or two of its given-name characters (read from
  services/synth/src/names.rs, so the lists never drift).

Hits are reported as file:line and kind, with the value masked: the report
itself must not carry what it found.

Usage: scripts/leak-scan.py FILE...      scan files (missing ones are an error)
       scripts/leak-scan.py --self-test  show that each kind is caught
"""

import pathlib
import re
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
CHECK = "10X98765432"
ID = re.compile(r"(?<![0-9A-Za-z])[1-9][0-9]{16}[0-9Xx](?![0-9A-Za-z])")
# Bounded by non-alphanumerics, so digits inside a hex hash or signature do not count.
MOBILE = re.compile(r"(?<![0-9A-Za-z])1[3-9][0-9]{9}(?![0-9A-Za-z])")
CJK_RUN = re.compile(r"[\u4e00-\u9fff]+")


def id_is_valid(text):
    return CHECK[sum(int(c) * w for c, w in zip(text[:17], WEIGHTS)) % 11] == text[17].upper()


def name_lists():
    source = (ROOT / "services/synth/src/names.rs").read_text(encoding="utf-8")
    def block(name):
        match = re.search(r"const " + name + r": &\[[^=]*= &\[(.*?)\];", source, re.S)
        if not match:
            sys.exit(f"leak-scan: {name} not found in services/synth/src/names.rs")
        return re.findall(r'"([^"]+)"', match.group(1))
    surnames = set(block("SURNAMES"))
    given = set(block("MALE_CHARS")) | set(block("FEMALE_CHARS"))
    return surnames, given


def is_generated_name(run, surnames, given):
    for surname in surnames:
        rest = run[len(surname):]
        if run.startswith(surname) and 1 <= len(rest) <= 2 and all(c in given for c in rest):
            return True
    return False


def mask(value):
    return value[:2] + "*" * max(len(value) - 4, 1) + value[-2:] if len(value) > 4 else "*" * len(value)


def scan_text(lines, surnames, given):
    """(line number, kind, masked value) of every hit."""
    hits = []
    for number, line in enumerate(lines, 1):
        for match in ID.finditer(line):
            if id_is_valid(match.group()):
                hits.append((number, "ID number", mask(match.group())))
        for match in MOBILE.finditer(line):
            hits.append((number, "mobile number", mask(match.group())))
        for match in CJK_RUN.finditer(line):
            if is_generated_name(match.group(), surnames, given):
                hits.append((number, "generated name", match.group()[0] + "*" * (len(match.group()) - 1)))
    return hits


def scan_files(paths, surnames, given):
    found = 0
    for path in paths:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for number, kind, masked in scan_text(handle, surnames, given):
                print(f"{path}:{number}: {kind} in clear ({masked})")
                found += 1
    return found


def self_test(surnames, given):
    """Each kind planted is found; masked and non-personal text is not."""
    planted = [
        "INFO person registered id=11010519491231002X",
        '{"level":"WARN","fields":{"phone":"13912345678"}}',
        "resident name=王伟 registered",
    ]
    clean = [
        "INFO person registered id=110105********002X",
        "sequence=110105194912310021 is not a valid ID (wrong check character)",
        "took 13912345678901 ns",
        "signature=8dbba678589e0dca16907345678816e0831f",
        "居住证 签注 申请 外来人员",
    ]
    with tempfile.TemporaryDirectory() as work:
        dirty_file = pathlib.Path(work, "dirty.log")
        dirty_file.write_text("\n".join(planted) + "\n", encoding="utf-8")
        clean_file = pathlib.Path(work, "clean.log")
        clean_file.write_text("\n".join(clean) + "\n", encoding="utf-8")
        kinds = {kind for _, kind, _ in scan_text(planted, surnames, given)}
        assert kinds == {"ID number", "mobile number", "generated name"}, kinds
        assert scan_files([dirty_file], surnames, given) == 3
        assert scan_text(clean, surnames, given) == [], scan_text(clean, surnames, given)
    print("leak-scan: self-test passes (each kind planted is caught, masked text is not)")


def main(argv):
    surnames, given = name_lists()
    if argv == ["--self-test"]:
        self_test(surnames, given)
        return 0
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    missing = [p for p in argv if not pathlib.Path(p).is_file()]
    if missing:
        print(f"leak-scan: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    found = scan_files(argv, surnames, given)
    if found:
        print(f"leak-scan: {found} personal data in clear", file=sys.stderr)
        return 1
    print(f"leak-scan: {len(argv)} files clean")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
