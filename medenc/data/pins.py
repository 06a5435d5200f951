"""The sha256 of every upstream file the adapters read, pinned at the commits named in each SOURCE.txt.

``make data`` hashes every raw file it reads (:func:`medenc.data.prepare.hash_raw_files`) and compares the
hashes with these pins before anything is parsed or written: a truncated, re-encoded or newer upstream file
would otherwise become a smaller or different data set without a word. A difference stops the build, naming
the file, both hashes and both line counts, unless ``--accept-upstream`` is given; the manifest then records
the entries that differ (``upstream_accepted``).

MedQuAD's 11,274 XML documents are pinned as one digest per subset folder (:func:`folder_digest`), not one
line each. A SOURCE.txt is our note about the copy, not an upstream file, so it is not pinned. After a
deliberate upstream update, ``python -m medenc.data.pins`` prints the pins of ``$DATA_DIR`` to paste here.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from medenc.core.errors import DataError


@dataclass(frozen=True)
class Pin:
    """The pinned sha256 of one upstream file (or MedQuAD subset folder) and its size in ``unit``."""

    sha256: str
    count: int | None = None  # lines of a text file, files of a folder; None for a binary file
    unit: str = "lines"


# Sources pinned per subset folder (one digest over the folder's files) instead of per file.
FOLDER_PINNED = ("medquad",)

ABBREVIATIONS = "medical_abbreviations/CSVs/{}, medical abbreviations.csv"
# Path under the raw data root (or MedQuAD subset folder) -> pin, at the upstream commit in each SOURCE.txt.
PINS: dict[str, Pin] = {
    # stsbenchmark @ c55a72f51bd1
    "stsbenchmark/sts-dev.csv": Pin("5d7e944d8b02734b07bfdb5df67db3420c64bed153fcaa1ba47ad03480cf4234", 1500),
    "stsbenchmark/sts-test.csv": Pin(
        "affe45928a66ee5a708531233c95b7dacbbdc57f974f002a3d32ea0180cf816a", 1379
    ),
    "stsbenchmark/sts-train.csv": Pin(
        "0f71910b59aa1ad973c5897f0791f3b0965a92b8f82b1a95f3eea9f4162fda82", 5749
    ),
    # biosses @ 381b24030e06
    "biosses/Annotation-Pairs.docx": Pin(
        "d11deee66b8d9f2f43b4e626271123d052fbdb991c65d6204bb885516d72ba05", None
    ),
    "biosses/Annotator-Scores.docx": Pin(
        "d13bd6a30f0f6a2bddf1749588b1934b1dd84d25b46179526d154be832a9846a", None
    ),
    # medquad @ 577bd37b96c0
    "medquad/1_CancerGov_QA": Pin(
        "7cc9ae0fff463b1d7a6ae2b3e88de0359cec1ebcc228562bb53352075945a0eb", 116, "files"
    ),
    "medquad/2_GARD_QA": Pin(
        "d9dc4e8530bae019f1afc276c4334df6a5220bbc008071aa58345cdb297fb652", 2685, "files"
    ),
    "medquad/3_GHR_QA": Pin(
        "d0ae0fe6804d5f20c9f642044bb11a9668d42a3e5f60412a77c973c8c4c18e95", 1086, "files"
    ),
    "medquad/4_MPlus_Health_Topics_QA": Pin(
        "1e1f222b338934061f649944cb96dde53ccb3089cb3cc5b3a1cdf6293761861d", 981, "files"
    ),
    "medquad/5_NIDDK_QA": Pin(
        "edcf3769a9ebb7030cfd03e5a3365690eb76ccd1937959a4f5fe1a38d6f4b137", 157, "files"
    ),
    "medquad/6_NINDS_QA": Pin(
        "92c986be8aec6ce19d43031dc2827d6445bb88e884b46a4397677ac46d21e061", 277, "files"
    ),
    "medquad/7_SeniorHealth_QA": Pin(
        "b9ed2e341ea073323ef6adf5672f51232b34d4d928610424fdd224bc2cf1e0ae", 48, "files"
    ),
    "medquad/8_NHLBI_QA_XML": Pin(
        "ea0526a35e39f50fd6d8c6158b4b3d2f59115e325fbeb4aa94e7a34374029d8a", 88, "files"
    ),
    "medquad/9_CDC_QA": Pin("c6f3c75f881779704f5af7f1dba7d73f5e9ab6bffa0f9c5ac0b060426622ed8d", 59, "files"),
    "medquad/10_MPlus_ADAM_QA": Pin(
        "d47d47a52b8817570ef5f8c05268cc10573f78a09ad40eaf7af17c0ea392536d", 4366, "files"
    ),
    "medquad/11_MPlusDrugs_QA": Pin(
        "b931177807ab1206dd1ecf00ae0b03c24ea4b5ff429930bd05c24536d9a0388e", 1312, "files"
    ),
    "medquad/12_MPlusHerbsSupplements_QA": Pin(
        "dec011adb4779aaeeba20e8e85dd354668d8a29520d73e88154f2e6e302565e2", 99, "files"
    ),
    # pubmedqa @ 1cbae8e92f72
    "pubmedqa/ori_pqal.json": Pin("8b3276be8942ebbd77f3ddcda12c1749bf0e490045a736fd8438ee40cf37a41d", 35173),
    "pubmedqa/test_ground_truth.json": Pin(
        "939fe566f09017d13b1ca64d2ddfee0bc2374b366048152997669cccedc44d51", 502
    ),
    # rqe_amia2016 @ 9302fb9a55a4
    "rqe_amia2016/RQE_Test_302_pairs_AMIA2016.xml": Pin(
        "0d7d97c8858971edfafad578d39e739129dad33a94cb690277f79f1b1d1b4e80", 1213
    ),
    "rqe_amia2016/RQE_Train_8588_AMIA2016.xml": Pin(
        "4729784635c1e9a07d06c91a5efb50bad298758c51705dbf6c7dabcd87adc854", 68707
    ),
    # meqsum @ 51e36cf65c12
    "meqsum/MeQSum_ACL2019_BenAbacha_Demner-Fushman.xlsx": Pin(
        "abedd939d5014306ca576522416bf69103e85dc8fcf1668a4099e8b84a39eeea", None
    ),
    # medical_abbreviations @ ce0e8397e88a
    ABBREVIATIONS.format("#-A"): Pin("1fb05f656b6f6f5f3e89ed8328f44d5c74412a9d38f1d9f839599ed55f151bbb", 481),
    ABBREVIATIONS.format("B"): Pin("36ade7aef3a9a8ac21ebe197f8107e5c100613120e8cfa79e1f9262cef396bd7", 146),
    ABBREVIATIONS.format("C"): Pin("d11ca422e8119d96be767fed0caf545eca25f6b354d91ca83a01c5bc98d7cdc4", 427),
    ABBREVIATIONS.format("D"): Pin("338350b6bc782e0a832143d1fc8e1277b8e94785aec561311a9607eb2f4832f9", 170),
    ABBREVIATIONS.format("E-G"): Pin("abc94fbe0583682f7e718fcaca44161fd79faf687c5e93fc258cacb2a038202c", 480),
    ABBREVIATIONS.format("H"): Pin("7cfc93df17e52245a95624ae156628035e0f88ccad82b1e73e539e3cdc868047", 211),
    ABBREVIATIONS.format("I"): Pin("22ddc1f90eb158b56af2c7d7b31e7e8543663594b6467b364a419c15f359ba16", 283),
    ABBREVIATIONS.format("J-L"): Pin("91a5b4189dd85ae29529b7acd5a3bd1da1a4dec6972e78eaedc804e70d9d92e6", 237),
    ABBREVIATIONS.format("M"): Pin("338ef8ef95394735dd7d56104e0e801c391728d22e240a11ef8a60bae8d35aff", 301),
    ABBREVIATIONS.format("N-O"): Pin("d837740539e111c8be8080379da698088a44f40be96cd1eda200ab1a77840f55", 267),
    ABBREVIATIONS.format("P"): Pin("90da97cb9b63cbdd66df092a8f9f5f8d1e1e3c180fa94614d14638233721cf51", 425),
    ABBREVIATIONS.format("Q-R"): Pin("90fdea3f80604cb4980b17169cb25af6aa63cb19a530cb36537f4c7a0b7c8c4f", 195),
    ABBREVIATIONS.format("S"): Pin("f6a46d0ad5db777058d9f883f6435bb12f00711dff577f02f13751e1346d34be", 320),
    ABBREVIATIONS.format("T"): Pin("9ed461d4a0567953ee2dc3108df12844605e85f07b78ae4c9525fb4cb2166dd9", 277),
    ABBREVIATIONS.format("U-Z"): Pin("444c445a0283ea18785a0e0b8288c39113bc647d29463d4ade7e3590f7a76993", 233),
    # disease_ontology @ 9fbefd6651b7
    "disease_ontology/DO_cancer_slim.obo": Pin(
        "031af4f526edbb60978ed1d817e620f4ecbee57378e5e68819c6c95b64878a2a", 11325
    ),
    "disease_ontology/DO_infectious_disease_slim.obo": Pin(
        "7118594e9d8e89ae1b7834218fa0dcedd247f4b20ce7b32a2bc5be82e7dee820", 8782
    ),
    "disease_ontology/DO_rare_slim.obo": Pin(
        "7307b7d0df45aa765660caf3cea29f65d2ad91263b66ba9da4d77d4ebd8cd05a", 55698
    ),
    "disease_ontology/HumanDO.tsv": Pin(
        "c862a3523b0308ae82df6ffd5b0781af83cc561a9e9aa2b25a3cee7e2b33452d", 12297
    ),
    "disease_ontology/NCIthesaurus.obo": Pin(
        "dfaad715d526718d55ae2e32fa2af0626d98a0f1824886d586dc148980546f7c", 72825
    ),
    # hpo_layperson @ af70204caaaa
    "hpo_layperson/layperson-synonyms.tsv": Pin(
        "2d22863798dbd660ea613f2f42a3f0c577941d6580764d5dc50bd372754ec3a0", 7187
    ),
}

ACCEPT_HINT = (
    "restore the unmodified upstream file (its folder's SOURCE.txt names the repository, commit and path), "
    "or accept a newer upstream version on purpose with `make data DATA_ARGS=--accept-upstream` "
    "(python scripts/prepare_data.py --accept-upstream): the manifest then records what differs"
)


def pin_key(rel: str) -> str | None:
    """The PINS key covering raw file ``rel`` (its subset folder for MedQuAD); None for a SOURCE.txt."""
    parts = rel.split("/")
    if parts[-1] == "SOURCE.txt":
        return None
    if parts[0] in FOLDER_PINNED and len(parts) > 2:
        return "/".join(parts[:2])
    return rel


def is_folder(key: str) -> bool:
    """Whether PINS ``key`` names a folder pinned as a whole."""
    return key.split("/")[0] in FOLDER_PINNED


def folder_digest(files: dict[str, str]) -> str:
    """sha256 over the sorted ``"<relative path>  <sha256>"`` lines of a folder's files."""
    lines = "".join(f"{rel}  {sha}\n" for rel, sha in sorted(files.items()))
    return hashlib.sha256(lines.encode("utf-8")).hexdigest()


def group(raw_files: dict[str, str]) -> dict[str, dict[str, str]]:
    """The raw files' hashes by the PINS key that covers them (SOURCE.txt files left out)."""
    out: dict[str, dict[str, str]] = defaultdict(dict)
    for rel, sha in raw_files.items():
        key = pin_key(rel)
        if key is not None:
            out[key][rel] = sha
    return dict(out)


def found_digests(raw_files: dict[str, str]) -> dict[str, str]:
    """PINS key -> the sha256 found: a file's own hash, a pinned folder's :func:`folder_digest`."""
    return {k: folder_digest(v) if is_folder(k) else v[k] for k, v in group(raw_files).items()}


def differences(raw_files: dict[str, str]) -> dict[str, str | None]:
    """Every PINS key whose found sha256 differs (None: missing), and every raw file that is not pinned."""
    found = found_digests(raw_files)
    return {
        k: found.get(k)
        for k in sorted(PINS.keys() | found.keys())
        if k not in PINS or PINS[k].sha256 != found.get(k)
    }


def count_lines(path: Path) -> int:
    """Lines of a file, a last line without a newline included (several upstream CSVs end without one)."""
    data = path.read_bytes()
    return data.count(b"\n") + int(bool(data) and not data.endswith(b"\n"))


def found_count(root: Path, key: str, raw_files: dict[str, str], pin: Pin | None) -> int | None:
    """What is on disk for ``key`` in the pin's unit: files of a folder, lines of a text file."""
    if is_folder(key):
        return len(group(raw_files).get(key, {}))
    path = root / key
    if pin is None or pin.count is None or not path.is_file():
        return None  # a binary or unpinned file: its hash alone says it differs
    return count_lines(path)


def _describe(key: str, sha: str | None, count: int | None, unit: str) -> str:
    """``sha256 <hex>, <count> <unit>`` (count where known), or what stands for a missing entry."""
    if sha is None:
        return f"0 {unit}" if is_folder(key) else "no such file"
    return f"sha256 {sha}" + (f", {count} {unit}" if count is not None else "")


def mismatch_error(root: Path, diffs: dict[str, str | None], raw_files: dict[str, str]) -> DataError:
    """The DataError for the first differing entry: both hashes, both counts, the others named, the fix."""
    key, found = next(iter(diffs.items()))
    pin = PINS.get(key)
    unit = pin.unit if pin is not None else ("files" if is_folder(key) else "lines")
    if pin is None:
        expected = "nothing here (not among the pinned upstream files)"
    else:
        kind = "folder (one sha256 over its files' sha256)" if is_folder(key) else "file"
        expected = f"the pinned upstream {kind}: {_describe(key, pin.sha256, pin.count, unit)}"
    found_text = _describe(key, found, found_count(root, key, raw_files, pin), unit)
    others = list(diffs)[1:]
    if others:
        found_text += f" (and {len(others)} more differ: {', '.join(others[:5])}{' ...' * (len(others) > 5)})"
    return DataError(root / key, None, expected, f"{found_text}. Truncated, changed or newer: {ACCEPT_HINT}")


def current_pins(root: Path, raw_files: dict[str, str]) -> dict[str, Pin]:
    """Pins for the raw files as they are now (to regenerate PINS after a deliberate upstream update)."""
    out = {}
    for key, sha in found_digests(raw_files).items():
        if is_folder(key):
            out[key] = Pin(sha, found_count(root, key, raw_files, None), "files")
        else:
            text = (root / key).suffix in (".csv", ".tsv", ".json", ".xml", ".txt", ".obo")
            out[key] = Pin(sha, count_lines(root / key) if text else None)
    return out


def main() -> None:
    """Print PINS entries for the raw files under ``$DATA_DIR``, as they are now."""
    from medenc.core.paths import data_dir
    from medenc.data.prepare import hash_raw_files  # here: prepare imports this module

    root = data_dir()
    for key, pin in sorted(current_pins(root, hash_raw_files(root)).items()):
        args = [repr(pin.sha256), repr(pin.count)] + ([repr(pin.unit)] if pin.unit != "lines" else [])
        print(f"    {key!r}: Pin({', '.join(args)}),")


if __name__ == "__main__":
    main()
