"""What a file that is not a spreadsheet's text is, told by its first bytes (the signature its format begins with).

An upload named .csv may be a workbook, a PDF or an archive picked by mistake: naming what it is tells the user
what to do, where reading it as text would only find a bad byte at some row and column.
"""

from __future__ import annotations

XLSX = "an Excel workbook (.xlsx)"
OLD_OFFICE = "an old Excel file (.xls) or a password-protected workbook"
ODS = "an OpenDocument spreadsheet (.ods)"
ZIP = "a zip archive"
DOCX = "a Word document (.docx)"
# Signatures as each format's specification gives them (ISO 32000 for PDF, RFC 1952 for gzip, and so on).
_SIGNATURES = (
    (b"%PDF-", "a PDF document"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", OLD_OFFICE),  # OLE2: .xls, and an encrypted .xlsx too
    (b"\x1f\x8b", "a gzip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"\x89PNG\r\n\x1a\n", "a PNG picture"),
    (b"\xff\xd8\xff", "a JPEG picture"),
    (b"SQLite format 3\x00", "an SQLite database"),
)
_ZIP_STARTS = (b"PK\x03\x04", b"PK\x05\x06")  # a member's header, or the end record of an empty archive


def file_kind(data: bytes) -> str | None:
    """Return what a file is by its signature ("a PDF document", `XLSX`, `ZIP` …), or None for no known one."""
    if data.startswith(_ZIP_STARTS):
        # Office files are zip packages; their members' names are stored as plain text in the package.
        if b"xl/" in data:
            return XLSX
        if b"word/" in data:
            return DOCX
        if b"opendocument.spreadsheet" in data[:200]:  # the uncompressed `mimetype`, the package's first member
            return ODS
        return ZIP
    return next((kind for signature, kind in _SIGNATURES if data.startswith(signature)), None)
